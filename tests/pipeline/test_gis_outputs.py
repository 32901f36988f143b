"""GIS-ready outputs: what GDAL and QGIS read from a job's files (issue 10).

The QGIS test opens the outputs in headless QGIS through the system Python (Debian's
``python3-qgis``, which ``make test`` installs when it is missing); it is skipped only where
``/usr/bin/python3`` cannot import ``qgis``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from PIL import Image
from shapely.geometry import box, shape

from pipeline.job import JobRequest, run_job
from pipeline.job.detections import confidence
from pipeline.report import Overlay, quicklook, scale_bar_length

SYSTEM_PYTHON = "/usr/bin/python3"
QGIS_CHECK = Path(__file__).with_name("qgis_check.py")


@pytest.fixture(scope="module")
def job(tmp_path_factory, survey_scene, model_dir) -> Path:
    out = tmp_path_factory.mktemp("gis") / "out"
    run_job(
        JobRequest(
            aoi=str(survey_scene.aoi),
            scenes=(str(survey_scene.scene),),
            model=str(model_dir),
            out=str(out),
            tile_size=320,
            executor="local",
            survey_date="2026-06-15",
        )
    )
    return out


def _statistics(src: rasterio.io.DatasetReader) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = src.statistics(1, approx=False)  # GDALGetRasterStatistics, as gdalinfo -stats
    return s.min, s.max


def test_probabilities_read_0_to_1_through_the_gdal_scale(job):
    doc = json.loads((job / "detections.geojson").read_text())
    with rasterio.open(job / "probabilities.tif") as src:
        assert src.scales == (1 / 254,) and src.offsets == (0.0,)
        assert "SCALE" not in src.tags()  # the old custom tag is gone
        assert src.descriptions == ("p(landfill)",)
        raw = src.read(1, masked=True)
        p = raw.astype(np.float64) * src.scales[0] + src.offsets[0]
        assert p.min() >= 0 and p.max() <= 1 and p.max() > 0.9
        # each site's score_max is the largest scaled probability inside it
        for f in doc["features"][:3]:
            geom = shape(f["geometry"])
            site = rasterio.features.geometry_mask(
                [rasterio.warp.transform_geom("EPSG:4326", src.crs, geom)],
                out_shape=raw.shape,
                transform=src.transform,
                invert=True,
            )
            assert abs(p[site].max() - f["properties"]["score_max"]) < 1e-4


def test_statistics_are_embedded_so_opening_writes_no_aux_xml(job, tmp_path):
    for name in ("probabilities.tif", "mask.tif"):
        copy = tmp_path / name
        shutil.copy(job / name, copy)
        with rasterio.open(copy) as src:
            tags = src.tags(1)
            data = src.read(1, masked=True)
            assert float(tags["STATISTICS_MAXIMUM"]) == data.max()
            assert float(tags["STATISTICS_MINIMUM"]) == data.min()
            assert abs(float(tags["STATISTICS_MEAN"]) - data.mean()) < 1e-6
            assert _statistics(src) == (data.min(), data.max())
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(name)) == [name]
    # and the check can fail: the same raster without its statistics gets a sidecar
    bare = tmp_path / "bare.tif"
    with rasterio.open(job / "mask.tif") as src:
        profile = src.profile | {"driver": "GTiff"}
        with rasterio.open(bare, "w", **profile) as dst:
            dst.write(src.read())
    with rasterio.open(bare) as src:
        _statistics(src)
    assert (tmp_path / "bare.tif.aux.xml").exists()


def test_mask_has_a_colour_table_categories_and_transparent_nodata(job):
    with rasterio.open(job / "mask.tif") as src:
        assert src.colorinterp[0].name == "palette"
        colours = src.colormap(1)
        assert colours[1] == (230, 0, 168, 255)
        assert src.tags()["CATEGORIES"] == "0=background,1=landfill"
        assert src.descriptions == ("class",)
    style = ET.parse(job / "mask.qml").getroot()
    renderer = style.find("pipe/rasterrenderer")
    assert renderer is not None and renderer.get("type") == "paletted"
    entries = {e.get("value"): e.attrib for e in renderer.iter("paletteEntry")}
    assert {v: e["label"] for v, e in entries.items()} == {"0": "background", "1": "landfill"}
    assert entries["0"]["alpha"] == "0" and entries["1"]["color"] == "#e600a8"


def test_probability_style_is_transparent_below_the_threshold(job):
    style = ET.parse(job / "probabilities.qml").getroot()
    shader = style.find("pipe/rasterrenderer/rastershader/colorrampshader")
    assert shader is not None and shader.get("clip") == "1"
    values = [float(i.get("value", "nan")) for i in shader.iter("item")]
    assert values[0] == 0.5 and values[-1] == 1.0 and values == sorted(values)


def test_geopackage_stores_its_default_style_and_a_date_field(job):
    info = pyogrio.read_info(job / "detections.gpkg", layer="detections")
    types = dict(zip(info["fields"], info["ogr_types"], strict=True))
    assert types["survey_date"] == "OFTDate" and types["confidence"] == "OFTString"
    with sqlite3.connect(job / "detections.gpkg") as db:
        rows = db.execute(
            "SELECT f_table_name, f_geometry_column, styleName, styleQML, useAsDefault "
            "FROM layer_styles"
        ).fetchall()
        contents = db.execute(
            "SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'"
        ).fetchall()
    db.close()
    assert contents == [("attributes",)]
    assert len(rows) == 1
    table, geom_column, name, qml, default = rows[0]
    assert (table, geom_column, name, default) == (
        "detections",
        info["geometry_name"],
        "wastewatch",
        1,
    )
    assert qml == (job / "detections.qml").read_text()
    root = ET.fromstring(qml)
    renderer = root.find("renderer-v2")
    assert renderer is not None and renderer.get("attr") == "confidence"
    fills = {o.get("value") for o in root.iter("Option") if o.get("name") == "style"}
    assert fills == {"no"}  # outlines only: the imagery stays visible
    text = root.find("labeling/settings/text-style")
    assert text is not None and text.get("fieldName") == "rank"


def test_every_site_has_its_confidence_band(job):
    sites = json.loads((job / "detections.geojson").read_text())["features"]
    assert sites
    for f in sites:
        p = f["properties"]
        assert p["confidence"] == confidence(p["score_max"])
    assert confidence(0.8) == "high" and confidence(0.7999) == "medium"
    assert confidence(0.5) == "medium" and confidence(0.4999) == "low"
    assert confidence(0.85, high=0.9, medium=0.6) == "medium"


def test_report_is_one_self_contained_page_with_a_row_per_site(job):
    page = (job / "report.html").read_text()
    sites = json.loads((job / "detections.geojson").read_text())["features"]
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert len(sources) == len(sites) + 1  # the quicklook and a chip per site
    assert "survey date 2026-06-15" in page
    ids = re.findall(r"<td>(WW-[0-9a-z-]+)</td>", page)
    assert ids == [f["properties"]["site_id"] for f in sites]  # in rank order


def test_the_report_s_chips_are_those_of_the_published_sites(job, survey_scene, model_dir):
    """The job makes the chips from its sites in memory, beside the quicklook: they are the
    chips of the sites it published."""
    import base64

    from pipeline.job import plan_job
    from pipeline.job.outputs import report_chips

    request = JobRequest(
        aoi=str(survey_scene.aoi),
        scenes=(str(survey_scene.scene),),
        model=str(model_dir),
        out=str(job),
        overwrite=True,
        tile_size=320,
        executor="local",
        survey_date="2026-06-15",
    )
    published = pyogrio.read_dataframe(job / "detections.gpkg", layer="detections")
    want = report_chips(plan_job(request), published)
    page = (job / "report.html").read_text()
    shown = [base64.b64decode(s) for s in re.findall(r'src="data:image/png;base64,([^"]*)"', page)]
    assert want and all(want)
    assert shown[-len(want) :] == want


def test_quicklook_labels_sites_and_has_a_legend_and_a_scale_bar(tmp_path):
    from rasterio.transform import from_origin

    scene = tmp_path / "grey.tif"
    with rasterio.open(
        scene,
        "w",
        driver="GTiff",
        width=400,
        height=300,
        count=3,
        dtype="uint8",
        crs="EPSG:32632",
        transform=from_origin(500000, 5000000, 0.5, 0.5),
    ) as dst:
        dst.write(np.full((3, 300, 400), 128, np.uint8))
    site = box(500050, 4999900, 500080, 4999930)  # pixels 100..160 x 140..200
    png = quicklook(
        scene,
        tmp_path / "q.png",
        [Overlay([site], (255, 0, 0), "high confidence", ["7"])],
        title="Camparada",
        subtitle="survey date 2026-06-15",
    )
    rgb = np.asarray(Image.open(png).convert("RGB"))
    assert rgb.shape[1] == 400 and rgb.shape[0] > 300  # strips above and below the scene
    top = int(np.nonzero((rgb == 128).all(axis=2).mean(axis=1) > 0.5)[0][0])
    picture, head, foot = rgb[top : top + 300], rgb[:top], rgb[top + 300 :]
    red = (picture == (255, 0, 0)).all(axis=2)
    assert red[140:200, 98:103].any()  # the outline
    assert (picture[160:180, 120:140] == 128).all()  # no fill
    # the rank label: white text just above the site's top-right corner
    white = (picture > 200).all(axis=2)
    assert white[122:142, 160:200].any() and not white[200:, :].any()
    assert (head < 100).all(axis=2).any()  # the title
    assert (foot == (255, 0, 0)).all(axis=2).any()  # the legend's swatch
    assert (foot < 30).all(axis=2).sum() > 100  # the scale bar's black half
    assert scale_bar_length(0.5, 160) == 50 and scale_bar_length(2.0, 160) == 200


@pytest.mark.parametrize("text", ["7", "42", "1378", "1011"])
@pytest.mark.parametrize("size", [12, 17, 22])
def test_stamped_labels_look_like_pillow_s_own_text(text, size):
    from PIL import ImageDraw

    from pipeline.report.quicklook import _label, font

    colour = (255, 140, 0)
    ours = Image.new("RGB", (160, 60), (128, 128, 128))
    _label(ours, (20.4, 40.0), text, size, colour)
    theirs = Image.new("RGB", (160, 60), (128, 128, 128))
    ImageDraw.Draw(theirs).text(
        (20.4, 40.0), text, font=font(size), fill=(255, 255, 255),
        stroke_width=max(2, size // 7), stroke_fill=tuple(c // 3 for c in colour), anchor="lb",
    )  # fmt: skip
    a, b = np.asarray(ours).astype(int), np.asarray(theirs).astype(int)

    def iou(x, y):  # type: ignore[no-untyped-def]
        return (x & y).sum() / (x | y).sum()

    assert iou((a > 200).all(2), (b > 200).all(2)) > 0.8, "the glyphs in the same places"
    assert iou((a != 128).any(2), (b != 128).any(2)) > 0.9, "the halo in the same places"
    assert np.abs(a - b).mean() < 3


def _has_qgis() -> bool:
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _has_qgis(), reason="QGIS (Debian python3-qgis) is not installed")
def test_outputs_open_styled_and_readable_in_qgis(job, tmp_path):
    alone = tmp_path / "detections.gpkg"  # no detections.qml beside it: the style must be inside
    shutil.copy(job / "detections.gpkg", alone)
    with rasterio.open(job / "probabilities.tif") as src:
        raw = src.read(1)
        row, col = (int(i[0]) for i in np.nonzero(raw == raw[raw != 255].max()))
        x, y = src.xy(row, col)
        expected = raw[row, col] / 254
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [SYSTEM_PYTHON, str(QGIS_CHECK), str(job), str(alone), repr(float(x)), repr(float(y))],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("QGIS-FACTS ")), None)
    assert line is not None, proc.stdout + proc.stderr
    facts = json.loads(line.removeprefix("QGIS-FACTS "))
    prob, mask = facts["probabilities"], facts["mask"]
    assert prob["valid"] and prob["renderer"] == "singlebandpseudocolor"
    assert abs(prob["sample"] - expected) < 1e-6 and 0 <= prob["min"] <= prob["max"] <= 1
    assert prob["ramp_min"] == 0.5 and prob["ramp_clips"]
    assert mask["valid"] and mask["renderer"] == "paletted"
    assert mask["categories"] == {"0": "background", "1": "landfill"}
    assert mask["alpha"]["0"] == 0 and mask["has_nodata"] and mask["nodata"] == 255
    n = len(json.loads((job / "detections.geojson").read_text())["features"])
    for name in ("geojson", "gpkg"):
        layer = facts[name]
        assert layer["valid"] and layer["features"] == n, name
        assert layer["renderer"] == "categorizedSymbol" and layer["class_attribute"] == "confidence"
        assert layer["labels"] and layer["label_field"] == "rank", name
        assert layer["fills"] == [True], name  # no fill
        assert layer["survey_date_is_date"] and layer["dates"] == ["2026-06-15"], name
    assert facts["gpkg"]["styles_in_database"] == {"count": 1, "names": ["wastewatch"]}
    assert facts["rendered_colours"] > 10
    assert facts["sidecars"] == []
    assert not list(job.glob("*.aux.xml"))
