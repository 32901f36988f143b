"""Open a job's outputs in headless QGIS and print what an analyst would see, as JSON.

Run with the system Python that has PyQGIS (Debian's ``python3-qgis``), not the project's venv:

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/pipeline/qgis_check.py OUT GPKG_ALONE X Y

``OUT`` is a job's output folder; ``GPKG_ALONE`` a copy of its ``detections.gpkg`` in a folder of
its own (no ``detections.qml`` beside it, so a style can only come from the GeoPackage); ``X Y``
a point in the output grid's CRS where the probabilities are sampled. ``tests/pipeline/test_qgis.py``
runs it and asserts on the output; this script asserts nothing itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qgis.core import (  # type: ignore[import-not-found]
    QgsApplication,
    QgsMapRendererCustomPainterJob,
    QgsMapSettings,
    QgsPointXY,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize, QVariant  # type: ignore[import-not-found]
from qgis.PyQt.QtGui import QColor, QImage, QPainter  # type: ignore[import-not-found]


def vector_facts(layer: QgsVectorLayer) -> dict[str, object]:
    renderer = layer.renderer()
    facts: dict[str, object] = {
        "valid": layer.isValid(),
        "features": layer.featureCount(),
        "renderer": renderer.type() if renderer else None,
        "survey_date_is_date": layer.fields().field("survey_date").type() == QVariant.Date,
        "fields": [f.name() for f in layer.fields()],
        "labels": layer.labelsEnabled(),
        "label_field": layer.labeling().settings().fieldName if layer.labeling() else None,
    }
    if renderer is not None and renderer.type() == "categorizedSymbol":
        facts["class_attribute"] = renderer.classAttribute()
        facts["categories"] = [str(c.value()) for c in renderer.categories()]
        facts["fills"] = sorted(
            {
                c.symbol().symbolLayer(0).brushStyle() == 0  # Qt.NoBrush
                for c in renderer.categories()
            }
        )
    dates = [f["survey_date"] for f in layer.getFeatures()]
    facts["dates"] = sorted({d.toString("yyyy-MM-dd") for d in dates if hasattr(d, "toString")})
    return facts


def main() -> None:
    out, gpkg_alone = Path(sys.argv[1]), Path(sys.argv[2])
    x, y = float(sys.argv[3]), float(sys.argv[4])
    app = QgsApplication([], False)
    app.setPrefixPath("/usr", True)
    app.initQgis()
    facts: dict[str, object] = {}

    prob = QgsRasterLayer(str(out / "probabilities.tif"), "probabilities")
    provider = prob.dataProvider()
    value, ok = provider.sample(QgsPointXY(x, y), 1)
    stats = provider.bandStatistics(1)
    shader = prob.renderer().shader() if prob.renderer().type() == "singlebandpseudocolor" else None
    ramp = shader.rasterShaderFunction() if shader else None
    facts["probabilities"] = {
        "valid": prob.isValid(),
        "renderer": prob.renderer().type(),
        "sample": value if ok else None,
        "scale": provider.bandScale(1),
        "offset": provider.bandOffset(1),
        "max": stats.maximumValue,
        "min": stats.minimumValue,
        "ramp_min": ramp.minimumValue() if ramp else None,
        "ramp_clips": ramp.clip() if ramp else None,
        "nodata": provider.sourceNoDataValue(1),
    }

    mask = QgsRasterLayer(str(out / "mask.tif"), "mask")
    renderer = mask.renderer()
    classes = renderer.classes() if renderer.type() == "paletted" else []
    facts["mask"] = {
        "valid": mask.isValid(),
        "renderer": renderer.type(),
        "categories": {str(int(c.value)): c.label for c in classes},
        "alpha": {str(int(c.value)): c.color.alpha() for c in classes},
        "nodata": mask.dataProvider().sourceNoDataValue(1),
        "has_nodata": mask.dataProvider().sourceHasNoDataValue(1),
    }

    geojson = QgsVectorLayer(str(out / "detections.geojson"), "detections", "ogr")
    facts["geojson"] = vector_facts(geojson)
    gpkg = QgsVectorLayer(f"{gpkg_alone}|layername=detections", "detections", "ogr")
    facts["gpkg"] = vector_facts(gpkg)
    styles = gpkg.listStylesInDatabase()
    facts["gpkg"]["styles_in_database"] = {  # type: ignore[index]
        "count": styles[0],
        "names": list(styles[2]),
    }

    # draw everything once, as QGIS does when the layers are opened, then look for sidecars
    settings = QgsMapSettings()
    settings.setLayers([geojson, mask, prob])
    settings.setDestinationCrs(prob.crs())
    extent = QgsRectangle(prob.extent())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(400, 400))
    settings.setBackgroundColor(QColor(255, 255, 255))
    image = QImage(QSize(400, 400), QImage.Format_ARGB32_Premultiplied)
    image.fill(QColor(255, 255, 255))
    painter = QPainter(image)
    job = QgsMapRendererCustomPainterJob(settings, painter)
    job.start()
    job.waitForFinished()
    painter.end()
    facts["rendered_colours"] = len(
        {image.pixel(i, j) for i in range(0, 400, 4) for j in range(0, 400, 4)}
    )
    del prob, mask, geojson, gpkg
    facts["sidecars"] = sorted(p.name for p in out.iterdir() if p.name.endswith(".aux.xml"))
    print("QGIS-FACTS " + json.dumps(facts))
    app.exitQgis()


if __name__ == "__main__":
    main()
