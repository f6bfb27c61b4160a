import pytest

from vlascope.errors import VlascopeError
from vlascope.policies import make_config
from vlascope.train.loop import make_train_config


def test_numbers_written_as_text_become_numbers():
    # YAML 1.1 reads `lr: 1e-4` (no dot) as the string "1e-4": the most common way to write it.
    cfg = make_train_config({"lr": "1e-4", "steps": "2e3", "batch_size": 64.0})
    assert cfg.lr == 1e-4 and isinstance(cfg.lr, float)
    assert cfg.steps == 2000 and isinstance(cfg.steps, int) and cfg.batch_size == 64
    policy = make_config("act", {"kl_weight": "1e1", "temporal_ensemble": "0.01", "use_vae": False})
    assert policy.kl_weight == 10.0 and policy.temporal_ensemble == 0.01 and policy.use_vae is False


@pytest.mark.parametrize("values,message", [
    ({"lr": "fast"}, "train option 'lr' must be a number, got 'fast'"),
    ({"steps": 10.5}, "train option 'steps' must be a whole number, got 10.5"),
    ({"learning_rate": 1e-4}, "unknown train option(s): learning_rate"),
])
def test_bad_values_are_one_line_errors(values, message):
    with pytest.raises(VlascopeError) as err:
        make_train_config(values)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_single_key_where_a_list_belongs_is_a_one_line_error():
    # `aux_keys: object_state` in YAML is a string; read as a list it would be its characters.
    for key in ("aux_keys", "obs_keys"):
        with pytest.raises(VlascopeError, match=f"flow policy option '{key}' must be a list, got 'object_state'"):
            make_config("flow", {key: "object_state"})
    assert make_config("flow", {"aux_keys": ["object_state"]}).aux_keys == ["object_state"]
