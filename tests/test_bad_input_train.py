"""tools/train.py and the training library: the bad input they refuse, and resuming past a damaged checkpoint."""
import io
import math

import pytest
import tensorflow as tf

from osmn_tf.data.synthetic import SyntheticConfig, write_davis
from osmn_tf.training.config import TrainConfig
from osmn_tf.training.finetune import OnlineFinetuning
from osmn_tf.training.samples import DavisTrainSource
from osmn_tf.training.trainer import Trainer
from osmn_tf.weights.checkpoints import CheckpointError

from conftest import load_tool, run_tool, tiny_train_config

SIZE = (64, 48)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_davis(root, SyntheticConfig(image_size=SIZE, num_frames=4), 2, split="train")
    return root


@pytest.fixture(scope="module")
def source(synthetic_root):
    return DavisTrainSource(synthetic_root, split="train", image_size=SIZE, scales=(1.0,), guide_size=64)


def tiny_config(synthetic_root, **changes):
    return tiny_train_config(synthetic_root, **{"dataset": "davis", "batch_size": 1, "image_every": 99,
                                                "validate_every": 99, **changes})


class TestLearningRate:
    """Item 4: a non-positive or non-finite learning rate is refused, with a message that says so."""

    @pytest.mark.parametrize("value", ["-0.001", "-1e-3", "0", "nan", "inf"])
    def test_train_tool_refuses(self, value, capsys):
        code, _ = run_tool("train", "--lr", value, "--model-dir", "/nonexistent/never-written")
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.endswith(f": error: argument --lr: a learning rate must be a positive finite number, got {value}")

    @pytest.mark.parametrize("value", ["-1e-5", "0"])
    def test_segment_tool_refuses_a_finetune_lr(self, value, capsys):
        code, _ = run_tool("segment", "--weights", "w.keras", "--frames", "f", "--first-mask", "m.png",
                           "--output", "out", "--finetune-lr", value)
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.endswith(f"error: argument --finetune-lr: a learning rate must be a positive finite number, "
                            f"got {value}")

    @pytest.mark.parametrize("rates", [(-1e-3,), (0.0,), (1e-3, math.nan), (math.inf,)])
    def test_the_library_config_refuses(self, rates):
        with pytest.raises(ValueError, match="learning rates must be positive finite numbers"):
            TrainConfig(learning_rates=rates, lr_boundaries=tuple(range(1, len(rates))))
        with pytest.raises(ValueError, match="positive finite learning rate"):
            OnlineFinetuning(10, learning_rate=rates[-1])


class TestCheckpoints:
    """Item 5 (training side) and the model-dir item of 7."""

    @pytest.mark.slow
    def test_resumes_from_the_newest_checkpoint_that_reads(self, synthetic_root, source, tmp_path):
        model_dir = tmp_path / "run"
        Trainer(tiny_config(synthetic_root), source, tf.distribute.get_strategy(), model_dir, log=None).train(False)
        data = next(model_dir.glob("ckpt-3.data-*"))
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
        log = io.StringIO()
        again = Trainer(tiny_config(synthetic_root, steps=4), source, tf.distribute.get_strategy(), model_dir, log=log)
        again.train(progress=False)
        text = log.getvalue()
        assert f"skipped checkpoint {model_dir / 'ckpt-3'}: it does not read" in text, text
        assert f"resumed from step 2 ({model_dir / 'ckpt-2'})" in text
        assert again.step == 4

    @pytest.mark.slow
    def test_no_readable_checkpoint_is_an_error_naming_them(self, synthetic_root, source, tmp_path):
        model_dir = tmp_path / "run"
        Trainer(tiny_config(synthetic_root, steps=2), source, tf.distribute.get_strategy(), model_dir,
                log=None).train(False)
        for data in model_dir.glob("ckpt-*.data-*"):
            data.write_bytes(b"")
        trainer = Trainer(tiny_config(synthetic_root), source, tf.distribute.get_strategy(), model_dir, log=None)
        with pytest.raises(CheckpointError, match=f"{model_dir}: no checkpoint reads: {model_dir / 'ckpt-2'} "):
            trainer.restore()

    @pytest.mark.slow
    def test_a_model_dir_of_another_width_is_named(self, synthetic_root, source, tmp_path):
        model_dir = tmp_path / "run"
        Trainer(tiny_config(synthetic_root, steps=1), source, tf.distribute.get_strategy(), model_dir,
                log=None).train(False)
        other = Trainer(tiny_config(synthetic_root, model={"width": 0.25}), source, tf.distribute.get_strategy(),
                        model_dir, log=None)
        with pytest.raises(CheckpointError) as error:
            other.train(progress=False)
        assert str(error.value) == (f"{model_dir} holds a run of another configuration (width 0.125 there, 0.25 "
                                    "asked): give another model_dir, or the same configuration to resume it")


def test_train_tool_exits_with_one_line_for_a_checkpoint_error(monkeypatch, tmp_path):
    tool = load_tool("train")

    def failing(*args):
        raise CheckpointError(f"{tmp_path}: no checkpoint reads: x")

    monkeypatch.setattr(tool, "run", failing)
    with pytest.raises(SystemExit) as exit_:
        tool.main(["--model-dir", str(tmp_path), "--quiet"])
    assert exit_.value.code == f"error: {tmp_path}: no checkpoint reads: x"
