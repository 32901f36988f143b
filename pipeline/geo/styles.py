"""QGIS styles of the outputs: QML documents, and the default style stored in a GeoPackage.

QGIS loads ``NAME.qml`` beside ``NAME.tif`` or ``NAME.geojson`` as the layer's default style, and
a GeoPackage's ``layer_styles`` row marked ``useAsDefault``: so the outputs open styled. The QML
here is the subset of QGIS 3.22's format these styles need; newer QGIS versions read it too.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CONFIDENCE_CATEGORIES",
    "STATUS_CATEGORIES",
    "Category",
    "class_colours",
    "detections_qml",
    "mask_qml",
    "probabilities_qml",
    "saliency_qml",
    "write_qml",
]

RGBA = tuple[int, int, int, int]

_QGIS_VERSION = "3.22.16-Białowieża"


@dataclass(frozen=True)
class Category:
    """One class of a categorized style: the attribute ``value``, its colour and legend label."""

    value: str
    colour: tuple[int, int, int]
    label: str


#: outlines of detections by ``confidence`` (the bands an inspector reads).
CONFIDENCE_CATEGORIES = (
    Category("high", (230, 0, 38), "high confidence"),
    Category("medium", (255, 140, 0), "medium confidence"),
    Category("low", (255, 230, 0), "low confidence"),
)

#: outlines of a survey's sites by ``status`` (new and grown stand out).
STATUS_CATEGORIES = (
    Category("new", (230, 20, 60), "new"),
    Category("grown", (255, 140, 0), "grown"),
    Category("persisting", (40, 120, 255), "persisting"),
    Category("shrunk", (120, 170, 255), "shrunk"),
    Category("disappeared", (150, 150, 150), "disappeared"),
    Category("not_observed", (200, 200, 200), "not observed"),
)

#: colours of foreground classes in mask.tif, in class order (background is transparent).
_CLASS_COLOURS = ((230, 0, 168), (0, 168, 230), (112, 168, 0), (255, 170, 0), (168, 56, 0))


def class_colours(n_classes: int, alpha: int = 255) -> list[RGBA]:
    """Colours of class ids ``0 .. n_classes - 1``: background transparent, then a palette."""
    colours: list[RGBA] = [(0, 0, 0, 0)]
    for i in range(1, n_classes):
        colours.append((*_CLASS_COLOURS[(i - 1) % len(_CLASS_COLOURS)], alpha))
    return colours


def _qgis(categories: str) -> ET.Element:
    return ET.Element("qgis", {"version": _QGIS_VERSION, "styleCategories": categories})


def _option_map(values: dict[str, str]) -> ET.Element:
    opts = ET.Element("Option", {"type": "Map"})
    for name, value in values.items():
        ET.SubElement(opts, "Option", {"name": name, "type": "QString", "value": value})
    return opts


def _rgba(colour: Sequence[int]) -> str:
    return ",".join(str(c) for c in (*colour[:3], colour[3] if len(colour) > 3 else 255))


def _hex(colour: Sequence[int]) -> str:
    return "#" + "".join(f"{c:02x}" for c in colour[:3])


def _document(root: ET.Element) -> str:
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n"


def _outline_symbol(name: str, colour: tuple[int, int, int], width_mm: float) -> ET.Element:
    symbol = ET.Element(
        "symbol",
        {"type": "fill", "name": name, "alpha": "1", "clip_to_extent": "1", "force_rhr": "0"},
    )
    layer = ET.SubElement(
        symbol, "layer", {"class": "SimpleFill", "enabled": "1", "pass": "0", "locked": "0"}
    )
    layer.append(
        _option_map(
            {
                "color": "0,0,0,0",
                "style": "no",  # no fill: the imagery under the site stays visible
                "outline_color": _rgba(colour),
                "outline_style": "solid",
                "outline_width": f"{width_mm:g}",
                "outline_width_unit": "MM",
                "joinstyle": "miter",
                "border_width_map_unit_scale": "3x:0,0,0,0,0,0",
                "offset": "0,0",
                "offset_unit": "MM",
            }
        )
    )
    return symbol


def detections_qml(
    field: str = "confidence",
    categories: Sequence[Category] = CONFIDENCE_CATEGORIES,
    label_field: str = "rank",
    width_mm: float = 0.8,
) -> str:
    """A polygon style: outlines coloured by ``field``'s categories, no fill, labelled with
    ``label_field`` (white text with a dark halo, every label shown).

    Args:
        field: the attribute the outline colour follows (``confidence``; ``status`` in surveys).
        categories: its values, colours and legend labels; other values get a grey outline.
        label_field: the attribute written beside each polygon.
        width_mm: outline width on screen.
    """
    root = _qgis("Symbology|Labeling")
    renderer = ET.SubElement(
        root,
        "renderer-v2",
        {
            "type": "categorizedSymbol",
            "attr": field,
            "symbollevels": "0",
            "enableorderby": "0",
            "forceraster": "0",
            "referencescale": "-1",
        },
    )
    cats = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for i, cat in enumerate(categories):
        ET.SubElement(
            cats,
            "category",
            {"render": "true", "symbol": str(i), "value": cat.value, "label": cat.label},
        )
        symbols.append(_outline_symbol(str(i), cat.colour, width_mm))
    ET.SubElement(
        cats,
        "category",
        {"render": "true", "symbol": str(len(categories)), "value": "", "label": "other"},
    )
    symbols.append(_outline_symbol(str(len(categories)), (160, 160, 160), width_mm))
    labeling = ET.SubElement(root, "labeling", {"type": "simple"})
    settings = ET.SubElement(labeling, "settings", {"calloutType": "simple"})
    ET.SubElement(
        settings,
        "text-style",
        {
            "fieldName": label_field,
            "isExpression": "0",
            "fontFamily": "Sans Serif",
            "fontSize": "10",
            "fontSizeUnit": "Point",
            "fontWeight": "75",
            "fontItalic": "0",
            "textColor": "255,255,255,255",
            "textOpacity": "1",
            "namedStyle": "Bold",
        },
    )
    ET.SubElement(
        settings,
        "text-buffer",
        {
            "bufferDraw": "1",
            "bufferSize": "1",
            "bufferSizeUnits": "MM",
            "bufferColor": "0,0,0,255",
            "bufferOpacity": "1",
            "bufferJoinStyle": "128",
            "bufferNoFill": "1",
        },
    )
    ET.SubElement(
        settings,
        "placement",
        {
            # outside the polygon (QGIS >= 3.14): the outline and the imagery in it stay visible
            "placement": "8",
            "centroidInside": "1",
            "centroidWhole": "0",
            "dist": "1",
            "distUnits": "MM",
            "fitInPolygonOnly": "0",
            "priority": "10",
        },
    )
    ET.SubElement(
        settings,
        "rendering",
        {
            "drawLabels": "1",
            "displayAll": "1",  # every rank is shown, even where labels collide
            "obstacle": "0",
            "scaleVisibility": "0",
            "upsidedownLabels": "0",
            "labelPerPart": "0",
            "mergeLines": "0",
            "fontLimitPixelSize": "0",
        },
    )
    ET.SubElement(root, "layerGeometryType").text = "2"
    return _document(root)


def _raster_root(renderer_attrs: dict[str, str]) -> tuple[ET.Element, ET.Element]:
    root = _qgis("Symbology")
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(
        pipe,
        "rasterrenderer",
        {"band": "1", "opacity": "1", "alphaBand": "-1", "nodataColor": "", **renderer_attrs},
    )
    ET.SubElement(renderer, "rasterTransparency")
    origin = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (
        ("limits", "None"),
        ("extent", "WholeRaster"),
        ("statAccuracy", "Estimated"),
        ("cumulativeCutLower", "0.02"),
        ("cumulativeCutUpper", "0.98"),
        ("stdDevFactor", "2"),
    ):
        ET.SubElement(origin, tag).text = text
    return root, renderer


def _raster_tail(root: ET.Element) -> None:
    pipe = root.find("pipe")
    assert pipe is not None
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(
        pipe,
        "huesaturation",
        {"saturation": "0", "grayscaleMode": "0", "colorizeOn": "0", "invertColors": "0"},
    )
    # nearest neighbour: a class or a probability is never blended with nodata on screen
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    ET.SubElement(root, "blendMode").text = "0"


def mask_qml(classes: Sequence[str], colours: Sequence[RGBA] | None = None) -> str:
    """A paletted style for ``mask.tif``: each class id with its name and colour (background
    transparent unless ``colours`` says otherwise); nodata is transparent.

    Args:
        classes: class names, index = class id.
        colours: RGBA per class id (default :func:`class_colours` at alpha 90, so that the
            imagery shows through).
    """
    colours = list(colours or class_colours(len(classes), alpha=90))
    root, renderer = _raster_root({"type": "paletted"})
    palette = ET.SubElement(renderer, "colorPalette")
    for value, (name, colour) in enumerate(zip(classes, colours, strict=True)):
        ET.SubElement(
            palette,
            "paletteEntry",
            {"value": str(value), "color": _hex(colour), "alpha": str(colour[3]), "label": name},
        )
    _raster_tail(root)
    return _document(root)


def probabilities_qml(threshold: float, band: int = 1) -> str:
    """A pseudocolour style for ``probabilities.tif`` in probability units (0..1, the file's
    scale applied): transparent below ``threshold``, yellow to red from it up to 1.

    Args:
        threshold: the lowest probability drawn (the job's detection threshold).
        band: the band (foreground class) shown.
    """
    low = f"{threshold:g}"
    root, renderer = _raster_root(
        {
            "type": "singlebandpseudocolor",
            "band": str(band),
            "classificationMin": low,
            "classificationMax": "1",
        }
    )
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader")
    shader.attrib.update(
        {
            "colorRampType": "INTERPOLATED",
            "classificationMode": "1",
            "clip": "1",  # values outside [threshold, 1] are not drawn
            "minimumValue": low,
            "maximumValue": "1",
            "labelPrecision": "2",
        }
    )
    mid = (threshold + 1) / 2
    for value, colour, alpha in (
        (threshold, "#ffff00", 80),
        (mid, "#ff8c00", 120),
        (1.0, "#e60026", 160),
    ):
        ET.SubElement(
            shader,
            "item",
            {"value": f"{value:g}", "color": colour, "alpha": str(alpha), "label": f"{value:.2f}"},
        )
    _raster_tail(root)
    return _document(root)


def saliency_qml(low: float = 0.1) -> str:
    """A heat-ramp style for ``saliency.tif`` in saliency units (0..1, the file's scale
    applied): transparent below ``low``, dark purple through orange to pale yellow at 1.

    Args:
        low: the lowest saliency drawn, so the imagery shows where there is no evidence.
    """
    root, renderer = _raster_root(
        {
            "type": "singlebandpseudocolor",
            "classificationMin": f"{low:g}",
            "classificationMax": "1",
        }
    )
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader")
    shader.attrib.update(
        {
            "colorRampType": "INTERPOLATED",
            "classificationMode": "1",
            "clip": "1",
            "minimumValue": f"{low:g}",
            "maximumValue": "1",
            "labelPrecision": "2",
        }
    )
    span = 1 - low
    for share, colour, alpha in (
        (0.0, "#3b0f70", 60),  # "inferno"-like: readable over imagery, monotone in lightness
        (0.4, "#b5367a", 110),
        (0.7, "#fb8861", 150),
        (1.0, "#fcfdbf", 190),
    ):
        value = low + share * span
        ET.SubElement(
            shader,
            "item",
            {"value": f"{value:g}", "color": colour, "alpha": str(alpha), "label": f"{value:.2f}"},
        )
    _raster_tail(root)
    return _document(root)


def write_qml(path: str | os.PathLike[str], qml: str) -> Path:
    """Write a QML document (UTF-8) to ``path``; returns it."""
    target = Path(path)
    target.write_text(qml, encoding="utf-8")
    return target
