"""Command-line options generated from the settings dataclasses of ``pipeline.core.settings``: a field with a
``Flag`` becomes an option with its default, its type, its choices, its range and its help, so a knob is
declared once. A field name that two classes share (``seed`` of the probes and of UMAP) is one option
that sets both."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from pipeline.artifacts.run_layer import LAYER_HELP, check_layer, resolve_layer
from pipeline.core.errors import EncajesError
from pipeline.core.layout import Workdir
from pipeline.core.settings import (
    GRID_DEFAULTS,
    CurveSettings,
    EmbedSettings,
    Flag,
    ProbeSettings,
    UmapSettings,
    field_type,
)
from pipeline.core.stage_report import Printable

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEFAULT_WORKDIR = "work/demo"
T = TypeVar("T")
TYPED_BY_USER = {ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.PROMPT}


def flagged_fields(
    cls: type, only: Iterable[str] | None = None, exclude: Iterable[str] = ()
) -> list[dataclasses.Field]:
    keep, drop = (set(only) if only is not None else None), set(exclude)
    return [
        f
        for f in dataclasses.fields(cls)
        if "flag" in f.metadata and f.name not in drop and (keep is None or f.name in keep)
    ]


def _click_type(base: type, flag: Flag) -> Any:
    if flag.choices:
        return click.Choice(flag.choices)
    low, open_low = (flag.above, True) if flag.above is not None else (flag.min, False)
    limited = low is not None or flag.max is not None
    if base is int:
        return click.IntRange(min=low, max=flag.max, min_open=open_low) if limited else int
    if base is float:
        return click.FloatRange(min=low, max=flag.max, min_open=open_low) if limited else float
    return str


def option_for(
    cls: type, f: dataclasses.Field, multiple: bool = False, repeat_help: str | None = None
) -> Callable[[F], F]:
    """One field as a click option; ``multiple``: repeatable, for a grid of values (no default), its
    help ``repeat_help`` when the grid is not the comparison's."""
    flag: Flag = f.metadata["flag"]
    base, repeatable = field_type(cls, f.name)
    names = list(flag.names or (f"--{f.name.replace('_', '-')}",))
    if repeatable:
        return click.option(*names, f.name, multiple=True, type=_click_type(base, flag), help=flag.help)
    if base is bool:  # off by default: a flag that turns it on
        return click.option(*names, f.name, is_flag=True, help=flag.help)
    if multiple:
        default = ", ".join(GRID_DEFAULTS[f.name])
        help = repeat_help or (
            f"{flag.help.split('. Default')[0].rstrip('.')}. Repeat to compare several. Default: {default}."
        )
        return click.option(*names, f.name + "s", multiple=True, type=_click_type(base, flag), help=help)
    shown = f.default is not None and f.default is not False
    return click.option(
        *names, f.name, type=_click_type(base, flag), default=f.default, show_default=shown, help=flag.help
    )


def settings_options(
    *classes: type, only: Iterable[str] | None = None, exclude: Iterable[str] = ()
) -> Callable[[F], F]:
    """Decorator: an option for every flagged field of ``classes`` (first class first in ``--help``)."""
    seen: set[str] = set()
    decorators = []
    for cls in classes:
        for f in flagged_fields(cls, only, exclude):
            if f.name not in seen:
                seen.add(f.name)
                decorators.append(option_for(cls, f))

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def grid_option(cls: type, name: str, repeat_help: str | None = None) -> Callable[[F], F]:
    """A field as a repeatable option named in the plural (``--model`` -> ``models``), with the field's
    names, type and choices."""
    (f,) = flagged_fields(cls, only=[name])
    return option_for(cls, f, multiple=True, repeat_help=repeat_help)


def settings_from_options(cls: type[T], values: dict[str, Any]) -> T:
    """The settings object from a command's keyword arguments."""
    return cls(**{f.name: values[f.name] for f in flagged_fields(cls) if f.name in values})


def typed_options(cls: type, values: dict[str, Any], exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Only the fields the user typed (or set through the environment): what overrides a config file."""
    context = click.get_current_context()
    return {
        f.name: values[f.name]
        for f in flagged_fields(cls, exclude=exclude)
        if f.name in values and context.get_parameter_source(f.name) in TYPED_BY_USER
    }


# --- what every command shares -----------------------------------------------------------------------


def _say_default_workdir(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """No --workdir: say which folder is used, on stderr (stdout stays one JSON object with --json)."""
    if ctx.get_parameter_source(param.name or "workdir") is ParameterSource.DEFAULT:
        click.echo(f"workdir: {value} (the default; --workdir to choose another)", err=True)
    return value


workdir_option = click.option(
    "--workdir",
    "-w",
    default=DEFAULT_WORKDIR,
    show_default=True,
    type=click.Path(file_okay=False),
    callback=_say_default_workdir,
    help="Folder that holds the corpus and every artifact made from it.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead.")
progress_option = click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show progress bars."
)
model_options = settings_options(EmbedSettings, only=("model", "pooling"))  # a model and its pooling


def _checked_layers(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Each typed --layer as one layer name (a wrong one is refused before anything is read)."""
    try:
        return tuple(map(check_layer, value)) if isinstance(value, tuple) else check_layer(value)
    except EncajesError as error:
        raise click.BadParameter(str(error).split(": ", 1)[-1]) from None


layer_option = click.option(
    "--layer", default="last", show_default=True, callback=_checked_layers, help=LAYER_HELP
)
serve_layer_option = click.option(
    "--layer",
    "layers",
    multiple=True,
    callback=_checked_layers,
    help="Serve the runs of this hidden layer (last, 6, -2 from the end, last4, first-last); repeat for "
    "several. Default: every run's layer, or each --model's last layer.",
)


def run_options(f: Callable) -> Callable:
    """--model/--pooling/--layer: which run a command works on."""
    return model_options(layer_option(f))


def resolved_layer(workdir: str, model: str, pooling: str | None, layer: str) -> str:
    """The canonical layer of a typed one (-2 -> the layer number, from what the workdir recorded)."""
    return resolve_layer(Workdir.at(workdir), model, pooling, layer)


def force_option(help: str) -> Callable:
    return click.option("--force", is_flag=True, help=help)


def command(group: click.Group, name: str | None = None) -> Callable:
    """A command that prints the report its body returns (text, or JSON with --json), and turns
    EncajesError into a one-line message (a JSON error object under --json) with exit status 1."""

    def decorate(body: Callable[..., Printable]) -> Callable:
        @functools.wraps(body)
        def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> None:
            try:
                report = body(*args, **kwargs)
            except EncajesError as error:
                if as_json:
                    click.echo(json.dumps({"error": str(error)}, ensure_ascii=False))
                raise click.ClickException(str(error)) from None
            if as_json:
                click.echo(json.dumps(report.to_dict(), ensure_ascii=False, default=str, indent=2))
            else:
                for line in report.lines():
                    click.echo(line)

        return group.command(name, context_settings=CONTEXT)(json_option(wrapper))

    return decorate


def announce(step: str) -> None:
    click.echo(f"-> {step}", err=True)


def grid_options(f: Callable) -> Callable:
    """What `compare` and `run` share: the grid, every embed/probe/UMAP setting, the report's place."""
    for option in reversed(
        [
            grid_option(EmbedSettings, "model"),
            grid_option(EmbedSettings, "pooling"),
            click.option(
                "--config",
                type=click.Path(exists=True, dir_okay=False),
                default=None,
                help="TOML file with models, poolings and [embed]/[probe]/[umap] settings; options given "
                "on the command line override it.",
            ),
            settings_options(
                EmbedSettings,
                ProbeSettings,
                UmapSettings,
                CurveSettings,
                exclude=("model", "pooling", "revision"),
            ),
            click.option("--plots/--no-plots", default=True, show_default=True, help="Draw UMAP maps."),
            click.option(
                "--curves/--no-curves",
                default=True,
                show_default=True,
                help="Learning curves: the probes refitted on subsamples of the training rows "
                "(--train-sizes x --resamples), for each reported run and the baselines.",
            ),
            click.option(
                "--combined/--no-combined",
                default=True,
                show_default=True,
                help="Also probe each reported run's embeddings together with the TF-IDF features: does "
                "the encoder add what n-grams miss?",
            ),
            click.option(
                "--out",
                type=click.Path(file_okay=False),
                default=None,
                help="Report folder. Default: WORKDIR/report.",
            ),
            force_option("Redo every stage even if fresh."),
            progress_option,
        ]
    ):
        f = option(f)
    return f


def spec_from_options(kw: dict[str, Any]) -> Any:
    """The comparison: the config file (if any), with every option the user typed on top."""
    from pipeline.report.compare import spec_from

    context = click.get_current_context()
    plots, curves, combined = (
        kw[name] if context.get_parameter_source(name) in TYPED_BY_USER else None
        for name in ("plots", "curves", "combined")
    )
    return spec_from(
        Path(kw["config"]) if kw["config"] else None,
        models=kw["models"],
        poolings=kw["poolings"],
        embed=typed_options(EmbedSettings, kw, exclude=("model", "pooling", "revision")),
        probe=typed_options(ProbeSettings, kw),
        umap=typed_options(UmapSettings, kw),
        plots=plots,
        curve=typed_options(CurveSettings, kw),
        curves=curves,
        combined=combined,
    )
