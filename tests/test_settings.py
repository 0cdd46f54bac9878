"""Settings validate themselves from the same declarations the CLI's options are made of."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli import main
from pipeline.core.errors import EncajesError
from pipeline.core.settings import EmbedSettings, IndexSettings, ProbeSettings, UmapSettings


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: EmbedSettings(pooling="max"), "Unknown --pooling 'max': use one of mean, cls"),
        (lambda: EmbedSettings(device="gpu"), "--device is not valid"),
        (lambda: EmbedSettings(max_length="abc"), "--max-length takes a whole number"),
        (lambda: ProbeSettings(C=0), "--C must be above 0"),
        (lambda: ProbeSettings(k=0), "--k must be at least 1"),
        (lambda: IndexSettings(target_recall=5), "--target-recall must be at most 1"),
        (lambda: UmapSettings(min_dist=-3), "--min-dist must be at least 0"),
    ],
)
def test_a_bad_value_is_refused_with_the_option_to_fix(build, message):
    with pytest.raises(EncajesError, match=message):
        build()


def test_the_cli_refuses_what_the_settings_refuse_and_shows_their_defaults(tmp_path):
    runner = CliRunner()
    for args, says in (
        (["probe", "--C", "0"], "range x>0"),
        (["plot", "--min-dist", "-3"], "0<=x<=1"),
        (["embed", "--device", "gpu"], "--device is not valid"),
    ):
        out = runner.invoke(main, [*args, "-w", str(tmp_path / "w")])
        assert out.exit_code in (1, 2) and says in out.output and "Traceback" not in out.output, out.output
    help_text = runner.invoke(main, ["compare", "--help"]).output
    assert "Default: minilm." in help_text and "Default: mean." in help_text
    assert "[default: 128; x>=2]" in runner.invoke(main, ["embed", "--help"]).output
