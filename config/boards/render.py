"""A :class:`~finpulse.config.boards.spec.BoardSpec` as Grafana dashboard JSON, built with the SDK.

>>> from finpulse.config.boards.catalog import BOARDS
>>> d = dashboard_json(BOARDS[0])
>>> d["uid"], d["schemaVersion"] >= 41, d["panels"][0]["targets"][0]["editorType"]
('finpulse-risk-overview', True, 'sql')
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import barchart, common, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from finpulse.config.boards.query import ClickHouseQueryBuilder, datasource_ref
from finpulse.config.boards.spec import SEVERITY_COLOURS, VARIABLES, BoardSpec, PanelSpec, layout


def colour(name: str) -> str:
    """Severity names map to the shared palette; other Grafana colour names pass through.

    >>> colour("red"), colour("green")
    ('#F2495C', 'green')
    """
    return SEVERITY_COLOURS.get(name, name)


def _thresholds(steps: tuple[tuple[float, str], ...]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(None if i == 0 else v, colour(c)) for i, (v, c) in enumerate(steps)])
    )


def severity_mapping() -> dm.ValueMap:
    """Value mapping that colours severity text cells and values."""
    return dm.ValueMap(
        options={
            name: dm.ValueMappingResult(text=name, color=hexa, index=i)
            for i, (name, hexa) in enumerate(SEVERITY_COLOURS.items())
        }
    )


def _fixed(hexa: str) -> dm.DynamicConfigValue:
    return dm.DynamicConfigValue("color", {"mode": "fixed", "fixedColor": hexa})


def _panel_builder(spec: PanelSpec) -> Any:
    p: Any
    if spec.kind == "timeseries":
        p = (
            timeseries.Panel()
            .line_width(1)
            .fill_opacity(25 if spec.stack else 10)
            .legend(
                common.VizLegendOptions()
                .show_legend(True)
                .display_mode(cm.LegendDisplayMode.LIST)
                .placement(cm.LegendPlacement.BOTTOM)
            )
        )
        if spec.stack:
            p = p.stacking(common.StackingConfig().mode(cm.StackingMode.NORMAL))
        if spec.thresholds:
            p = p.thresholds_style(
                common.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.LINE)
            )
        return p
    if spec.kind == "barchart":
        return (
            barchart.Panel()
            .x_field(spec.columns[0].name)
            .show_value(cm.VisibilityMode.AUTO)
            .fill_opacity(80)
            .gradient_mode(cm.GraphGradientMode.NONE)
            .line_width(1)
        )
    if spec.kind == "stat":
        return (
            stat.Panel()
            .color_mode(cm.BigValueColorMode.BACKGROUND)
            .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
            .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        )
    p = table.Panel().show_header(True).align(cm.FieldTextAlignment.AUTO).inspect(False)
    for col in spec.columns:
        if col.type == "severity":
            p = p.override_by_name(
                col.name,
                [
                    dm.DynamicConfigValue(
                        "custom.cellOptions", {"type": "color-background", "mode": "basic"}
                    )
                ],
            )
    if spec.color_column:
        p = p.override_by_name(
            spec.color_column,
            [
                dm.DynamicConfigValue(
                    "custom.cellOptions", {"type": "color-background", "mode": "basic"}
                )
            ],
        )
    return p


def panel(spec: PanelSpec, panel_id: int, pos: tuple[int, int, int, int]) -> Any:
    """The SDK builder of one panel."""
    x, y, w, h = pos
    p = (
        _panel_builder(spec)
        .id(panel_id)
        .title(spec.title)
        .datasource(datasource_ref())
        .grid_pos(dm.GridPos(h=h, w=w, x=x, y=y))
        .with_target(ClickHouseQueryBuilder(spec.sql, spec.format_val))
        .unit(spec.unit)
    )
    if spec.description:
        p = p.description(spec.description)
    if spec.decimals is not None:
        p = p.decimals(spec.decimals)
    if spec.min_val is not None:
        p = p.min(spec.min_val)
    if spec.max_val is not None:
        p = p.max(spec.max_val)
    if spec.thresholds:
        p = p.thresholds(_thresholds(spec.thresholds))
    if any(c.type == "severity" for c in spec.columns):
        p = p.mappings([severity_mapping()])
    if spec.severity_series:
        for name, hexa in SEVERITY_COLOURS.items():
            p = p.override_by_name(name, [_fixed(hexa)])
    return p


def variable(name: str, values: tuple[str, ...]) -> dash.CustomVariable:
    """A multi-value custom variable with "All" (expands to every listed value) selected."""
    return (
        dash.CustomVariable(name)
        .label(name.capitalize())
        .values(",".join(values))
        .multi(True)
        .include_all(True)
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def dashboard_builder(board: BoardSpec) -> dash.Dashboard:
    d = (
        dash.Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags(list(board.tags))
        .timezone("utc")
        .time(board.time_from, "now")
        .refresh(board.refresh)
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
    )
    for name, values in VARIABLES.items():
        d = d.with_variable(variable(name, values))
    for i, (spec, pos) in enumerate(zip(board.panels, layout(board.panels), strict=True)):
        d = d.with_panel(panel(spec, i + 1, pos))
    return d


def dashboard_json(board: BoardSpec) -> dict[str, Any]:
    """The dashboard model as plain JSON data."""
    data: dict[str, Any] = json.loads(json.dumps(dashboard_builder(board).build(), cls=JSONEncoder))
    return data


def dumps(data: Any) -> str:
    """Stable text of a generated JSON file (sorted keys, 2-space indent, newline)."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
