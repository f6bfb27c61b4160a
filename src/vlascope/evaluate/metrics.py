"""Success rates with Wilson score intervals, and the per-run summary of episode results."""

from __future__ import annotations

import math

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (sound at 0/n and n/n, unlike Wald)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def gap_p_value(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """One-sided Fisher exact test: the chance, were both success rates the same, that `a` leads
    `b` by at least this much (the hypergeometric tail). Closed-loop checks run a handful of
    episodes, where a normal approximation does not hold."""
    total, successes = n_a + n_b, successes_a + successes_b
    tail = sum(math.comb(successes, x) * math.comb(total - successes, n_a - x)
               for x in range(successes_a, min(successes, n_a) + 1))
    return tail / math.comb(total, n_a)


def fisher_two_sided(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """Two-sided Fisher exact test: the chance, were both success rates the same, of a table as
    unlikely as this one or less (every split of the successes whose hypergeometric probability
    is at most the observed one's). Exact in integers, so it holds at thousands of episodes."""
    total, successes = n_a + n_b, successes_a + successes_b
    weights = {x: math.comb(successes, x) * math.comb(total - successes, n_a - x)
               for x in range(max(0, successes - n_b), min(successes, n_a) + 1)}
    observed = weights[successes_a]
    return sum(w for w in weights.values() if w <= observed) / math.comb(total, n_a)


def pooled_success(summaries: list[dict]) -> dict:
    """The episodes of several summaries counted as one: successes, rate and Wilson interval."""
    k = sum(s["successes"] for s in summaries)
    n = sum(s["episodes"] for s in summaries)
    return {"episodes": n, "successes": k, "success_rate": k / n if n else 0.0,
            "success_ci95": list(wilson_interval(k, n))}


def success_by_group(summaries: dict[str, dict], groups: dict[str, tuple[str, ...]]) -> dict:
    """Success pooled over the episodes of each group's tasks that were run (MetaWorld's
    difficulty splits, say), and over every task ("average")."""
    out = {}
    members = {**{name: [t for t in tasks if t in summaries] for name, tasks in groups.items()},
               "average": list(summaries)}
    for name, tasks in members.items():
        if tasks:
            out[name] = {"tasks": len(tasks), **pooled_success([summaries[t] for t in tasks])}
    return out


def pool_runs(summaries: list[dict]) -> dict:
    """Success over several training runs (seeds) of one recipe, each evaluated on the same
    episodes. One run is one draw: seeds of one recipe spread by more than an episode interval
    (benchmarks/README.md), so a recipe judged on its best seed is judged on luck. The pooled Wilson
    interval counts episode noise only; `run_sd` is the spread between runs."""
    if not summaries:
        raise ValueError("pool_runs needs at least one run summary")
    rates = [s["success_rate"] for s in summaries]
    return {"runs": len(summaries), **pooled_success(summaries),
            "run_rates": rates, "run_sd": float(np.std(rates, ddof=1)) if len(rates) > 1 else 0.0,
            "run_min": min(rates), "run_max": max(rates)}


def format_pooled(pooled: dict) -> str:
    """One line for `pool_runs`'s result: the pooled count, its interval, each run's rate."""
    lo, hi = pooled["success_ci95"]
    return (f"{pooled['successes']}/{pooled['episodes']} ({100 * pooled['success_rate']:.0f}%) "
            f"[{100 * lo:.0f}, {100 * hi:.0f}]%; per run "
            + ", ".join(f"{100 * x:.0f}%" for x in pooled["run_rates"])
            + f" (sd {100 * pooled['run_sd']:.0f} points)")


def _rate(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarize(results) -> dict:
    n = len(results)
    k = sum(r.success for r in results)
    lo, hi = wilson_interval(k, n)
    return {
        "episodes": n,
        "successes": k,
        "success_rate": k / n if n else 0.0,
        "success_ci95": [lo, hi],
        "avg_return": float(np.mean([r.episode_return for r in results])) if n else 0.0,
        "reached_rate": _rate(r.reached for r in results),
        "grasped_rate": _rate(r.grasped for r in results),
        "avg_length": float(np.mean([r.length for r in results])) if n else 0.0,
        "avg_final_object_to_goal": float(np.mean([r.final_object_to_goal for r in results])) if n else 0.0,
        "errors": sum(r.error is not None for r in results),
    }


def format_percent(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns under a header and a rule: every table vlascope prints."""
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_success(s: dict) -> list[str]:
    """A summary's success as table cells: 'k/n (p%)' and its 95% interval."""
    lo, hi = s["success_ci95"]
    return [f"{s['successes']}/{s['episodes']} ({100 * s['success_rate']:.0f}%)", f"[{100 * lo:.0f}, {100 * hi:.0f}]%"]


def format_summary_table(rows: list[tuple[str, dict]]) -> str:
    return format_table(
        ["run", "success", "95% CI", "return", "reached", "grasped", "length", "obj-goal"],
        [[name, *format_success(s), f"{s['avg_return']:.1f}", format_percent(s["reached_rate"]),
          format_percent(s["grasped_rate"]), f"{s['avg_length']:.0f}", f"{s['avg_final_object_to_goal']:.3f}"]
         for name, s in rows])
