import numpy as np
import pytest
import torch

from tests.conftest import TINY_POLICY
from vlascope.data import TaskSet, read_dataset
from vlascope.data.language import embed_instructions


def test_sentence_embeddings_are_unit_vectors_that_carry_meaning():
    e = embed_instructions(["pick the puck and place it at the goal",
                            "pick up the puck and put it on the goal",
                            "open the drawer"])
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # a paraphrase is closer than another task


def test_collected_dataset_caches_its_instruction_embedding(reach_dataset):
    data = read_dataset(reach_dataset)
    cached = data.instruction_embedding
    assert cached.shape == (384,)
    np.testing.assert_allclose(cached, embed_instructions([data.attrs["instruction"]])[0], atol=1e-5)
    assert data.attrs["instruction_encoder"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_language_conditioned_multi_task_training(reach_dataset, button_dataset, tmp_path):
    from vlascope.policies import load_pretrained
    from vlascope.train import TrainConfig, train

    result = train([reach_dataset, button_dataset], "flow", tmp_path,
                   TrainConfig(steps=5, batch_size=16, warmup_steps=1, ckpt_every=0),
                   {**TINY_POLICY, "language": True, "language_norm": True}, progress=False)
    policy = load_pretrained(result.last_checkpoint)
    tasks = TaskSet.of([read_dataset(reach_dataset), read_dataset(button_dataset)])
    assert policy.config.task_names == ["reach-v3", "button-press-v3"]
    assert policy.config.language_dim == 384
    # The embeddings travel in the checkpoint: evaluation needs no text model.
    torch.testing.assert_close(policy.instruction_embeddings, torch.from_numpy(tasks.embeddings))
    assert policy.encoder.task.project.weight.shape == (TINY_POLICY.get("task_embed_dim", 32), 384)
    # language_norm: the two tasks' instructions reach the policy centred, at unit variance,
    # whether looked up by task or given with the observation.
    obs = {k: torch.zeros(2, policy.config.n_obs_steps, policy.config.obs_dims[k])
           for k in policy.config.obs_keys}
    looked_up = policy.inputs(obs, torch.tensor([0, 1]))["language"]
    torch.testing.assert_close(looked_up.mean(0), torch.zeros(384), atol=1e-5, rtol=0)
    torch.testing.assert_close(looked_up.pow(2).mean(), torch.tensor(1.0))
    given = policy.inputs({**obs, "language": torch.from_numpy(tasks.embeddings)}, None)["language"]
    torch.testing.assert_close(given, looked_up)


def test_embeddings_come_from_the_cache_when_it_has_them(tmp_path, monkeypatch):
    import json

    from vlascope.data import language

    monkeypatch.setenv("VLASCOPE_CACHE", str(tmp_path))
    first = embed_instructions(["open the drawer"])
    stored = json.loads((tmp_path / "instruction_embeddings.json").read_text())
    np.testing.assert_allclose(stored[language.ENCODER_NAME]["open the drawer"], first[0], atol=1e-6)
    # A machine without the text model reuses what was computed elsewhere.
    monkeypatch.setattr(language, "_encoder", lambda: (_ for _ in ()).throw(AssertionError("no model")))
    np.testing.assert_allclose(embed_instructions(["open the drawer"]), first)
    with pytest.raises(AssertionError, match="no model"):
        embed_instructions(["close the window"])
