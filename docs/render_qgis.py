"""Render a job's outputs as QGIS draws them when an analyst opens them: the scene, then the
probabilities, the mask and the detections, each with the style it carries (no styling here).

Run with the system Python that has PyQGIS (Debian's ``python3-qgis``):

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 docs/render_qgis.py OUT SCENE docs/qgis-demo.png

This produced ``docs/qgis-demo.png`` from the ``make demo`` job of Camparada (2027-06-15).
"""

from __future__ import annotations

import sys
from pathlib import Path

from qgis.core import (  # type: ignore[import-not-found]
    QgsApplication,
    QgsMapRendererCustomPainterJob,
    QgsMapSettings,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize  # type: ignore[import-not-found]
from qgis.PyQt.QtGui import QColor, QImage, QPainter  # type: ignore[import-not-found]


def main() -> None:
    out, scene, png = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    width = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    app = QgsApplication([], False)
    app.setPrefixPath("/usr", True)
    app.initQgis()
    layers = [
        QgsVectorLayer(str(out / "detections.geojson"), "detections", "ogr"),
        QgsRasterLayer(str(out / "mask.tif"), "mask"),
        QgsRasterLayer(str(out / "probabilities.tif"), "probabilities"),
        QgsRasterLayer(str(scene), "scene"),
    ]
    for layer in layers:
        assert layer.isValid(), layer.name()
    grid = layers[2]
    extent = grid.extent()
    height = round(width * extent.height() / extent.width())
    settings = QgsMapSettings()
    settings.setLayers(layers)  # top first
    settings.setDestinationCrs(grid.crs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(width, height))
    settings.setOutputDpi(110)
    settings.setBackgroundColor(QColor(255, 255, 255))
    image = QImage(QSize(width, height), QImage.Format_RGB32)
    image.fill(QColor(255, 255, 255))
    painter = QPainter(image)
    job = QgsMapRendererCustomPainterJob(settings, painter)
    job.start()
    job.waitForFinished()
    painter.end()
    image.save(str(png))
    app.exitQgis()


if __name__ == "__main__":
    main()
