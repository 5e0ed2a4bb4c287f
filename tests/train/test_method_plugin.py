"""A new method is one definition: added to METHODS, it gets its `train run` option (help, range check), its
`train sweep` key, its docs/cli.md row, and trains, with no other file touched."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked, option
from tierclip.train.cli import app
from tierclip.train.methods import METHODS
from tierclip.train.methods.clip import Clip
from typer.testing import CliRunner

from tests.cli_reference import commands
from tests.train.helpers import color_pool


@dataclass(frozen=True)
class EchoConfig(Checked):
    prefix: ClassVar[str] = "echo"
    gain: float = option(0.5, "multiplies the CLIP loss.", gt=0, le=10)


class Echo(Clip):
    """CLIP with its loss scaled by --echo-gain."""

    config = EchoConfig

    def forward(self, model, batch: dict) -> dict:
        clip = super().forward(model, batch)["clip_loss"]
        return {"loss": self.cfg.gain * clip, "clip_loss": clip}


@pytest.fixture
def echo(monkeypatch):
    monkeypatch.setitem(METHODS, "echo", Echo)


def test_its_option_is_in_help_and_docs_and_range_checked(echo, tmp_path):
    from tierclip.curate.cliopts import command_reference

    runner = CliRunner()
    help_text = runner.invoke(app, ["run", "--help"], terminal_width=200).output
    assert "--echo-gain" in help_text and "echo: multiplies the CLIP loss." in help_text
    assert "| `--echo-gain` | `0.5` | echo: multiplies the CLIP loss. [a number in (0, 10]] |" in \
        command_reference({"train run": commands()["train run"]})  # the row docs/cli.md gets when regenerated
    refused = runner.invoke(app, ["run", str(tmp_path / "pool"), "--out", str(tmp_path / "run"), "--method", "echo",
                                  "--echo-gain", "0"])
    assert refused.exit_code == 2 and "--echo-gain 0: must be a number in (0, 10]" in refused.output
    other = runner.invoke(app, ["run", str(tmp_path / "pool"), "--out", str(tmp_path / "run"), "--echo-gain", "2"])
    assert isinstance(other.exception, UserError) and "--echo-gain: not an option of method clip" in str(other.exception)
    assert not (tmp_path / "run").exists()


def test_its_option_is_a_sweep_key_checked_like_the_flag(echo, tmp_path):
    from tierclip.train.sweep import load_spec, option_keys

    assert "echo_gain" in option_keys()
    spec = tmp_path / "sweep.toml"
    spec.write_text('pool = "p"\nmethods = ["echo", "clip"]\n[options]\necho_gain = 2.0\n')
    assert load_spec(spec).options == {"echo_gain": 2.0}
    for methods, gain, message in ((["echo"], 11, "--echo-gain 11: must be a number in"),
                                   (["clip"], 2.0, "echo_gain is an option of no method in the grid")):
        spec.write_text(f'pool = "p"\nmethods = {json.dumps(methods)}\n[options]\necho_gain = {gain}\n')
        with pytest.raises(UserError, match=message):
            load_spec(spec)


def test_it_trains_and_config_json_records_its_option(echo, tmp_path):
    pool = color_pool(tmp_path / "pool", shards=1, per_shard=8)
    result = CliRunner().invoke(app, ["run", str(pool.root), "--out", str(tmp_path / "run"), "--method", "echo", "--scale",
                                      "debug", "--samples-seen", "16", "--batch-size", "8", "--loader-workers", "0",
                                      "--log-every", "1", "--echo-gain", "2"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    config = json.loads((tmp_path / "run" / "config.json").read_text())["run"]
    assert config["method"] == "echo" and config["method_cfg"] == {"echo_gain": 2.0}
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(row["loss"] == pytest.approx(2 * row["clip_loss"], rel=1e-6) for row in rows)
