"""The admin's map widget, with OpenLayers served from local static files.

Django's ``OpenLayersWidget`` loads OpenLayers from a CDN and puts a NASA tile layer
under the geometry; government intranets reach neither. This widget loads the
vendored copy (``static/vendor/ol``) and draws on an empty base layer, so the map
works offline; a new geometry starts centred on Guangming.
"""

from django.contrib.gis.forms.widgets import OSMWidget


class OfflineMapWidget(OSMWidget):
    """An OpenLayers geometry editor that needs no network access."""

    template_name = "registry/widgets/offline_map.html"
    default_lon = 113.93
    default_lat = 22.76
    default_zoom = 12

    class Media:
        # Replace, not extend, the parent's media: that is where the CDN URLs are.
        extend = False
        css = {"all": ("vendor/ol/ol.css", "gis/css/ol3.css")}
        js = ("vendor/ol/ol.js", "gis/js/OLMapWidget.js")
