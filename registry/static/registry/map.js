// The planners' map, drawn with Leaflet from the vendored static files.
//
// District page: every project outlined and labelled with its cleared share; a
// click opens the project's map. Project page: the project's parcels from the
// vector tiles (Leaflet.VectorGrid, on 2D canvases), coloured by cleared or not,
// status or land class; buildings from zoom 15; a click or a drawn rectangle or
// polygon (leaflet-draw) asks the REST API which parcels it hits and lists them.
//
// Which parcel is under a click is answered by the API (?point=), not by the
// tiles: it tests the stored geometry rather than the simplified tile geometry,
// and VectorGrid's own click handling calls L.DomEvent.fakeStop, which Leaflet
// 1.8 removed. The page exposes window.registryMap for its browser tests.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("map-config").textContent);
  const messages = config.messages;
  const wholeNumber = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_match, name) => String(values[name]));
  }

  function element(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    Object.entries(attributes || {}).forEach(([name, value]) => {
      node.setAttribute(name, value);
    });
    return node;
  }

  function escapeHtml(text) {
    const node = document.createElement("span");
    node.textContent = String(text);
    return node.innerHTML;
  }

  // A map with the configured base maps (none by default) and the district's
  // outline, which is all the orientation an offline map has.
  function newMap() {
    // No fading in of tiles: a recoloured layer swaps at once instead of
    // flashing, and a screenshot after the load event shows the final colours.
    const map = L.map("map", { maxZoom: 20, fadeAnimation: false });
    map.attributionControl.setPrefix("Leaflet");
    const bases = config.basemaps.map((base) => ({
      name: base.name,
      layer: L.layerGroup(base.layers.map((tiles) => L.tileLayer(tiles.url, tiles.options))),
    }));
    if (bases.length) {
      bases[0].layer.addTo(map);
      const choices = {};
      bases.forEach((base) => { choices[base.name] = base.layer; });
      choices[messages.noBasemap] = L.layerGroup();
      L.control.layers(choices, null, { collapsed: bases.length > 1 }).addTo(map);
    }
    const outline = L.geoJSON(config.outline, {
      interactive: false,
      style: { color: "#5c6b7a", weight: 1.5, dashArray: "6 4", fill: false },
    }).addTo(map);
    L.control.scale({ imperial: false }).addTo(map);
    return { map, outline };
  }

  function districtPage() {
    const { map, outline } = newMap();
    const projects = L.featureGroup().addTo(map);
    config.projects.forEach((project) => {
      if (!project.boundary) return;
      const layer = L.geoJSON(project.boundary, {
        style: { color: "#14375e", weight: 2, fillColor: "#14375e", fillOpacity: 0.08 },
      });
      // A node, not a string: Leaflet writes string content as HTML.
      layer.bindTooltip(element("span", project.label), {
        permanent: true, direction: "center", className: "project-label",
      });
      layer.on("click", () => { window.location.href = project.url; });
      layer.on("mouseover", () => layer.setStyle({ fillOpacity: 0.25 }));
      layer.on("mouseout", () => layer.setStyle({ fillOpacity: 0.08 }));
      layer.code = project.code;
      projects.addLayer(layer);
    });
    const extent = projects.getLayers().length ? projects.getBounds() : outline.getBounds();
    map.fitBounds(extent, { padding: [20, 20] });
    window.registryMap = { map, projects, config };
    document.body.dataset.mapReady = "yes";
  }

  function projectPage() {
    const { map } = newMap();
    const project = config.project;
    // Survey orthophotos, each a raster tile layer under the parcels (zIndex 1),
    // switched on from the layers control; off at first, so the parcels' colours
    // read true until a planner asks for the photo.
    if (config.imagery.length) {
      const photos = {};
      config.imagery.forEach((photo) => {
        // The layers control writes names as HTML, and a title is whatever a
        // surveyor typed: escape it.
        photos[escapeHtml(photo.title)] = L.tileLayer(photo.url, {
          bounds: photo.bounds, minNativeZoom: photo.minNativeZoom,
          maxNativeZoom: photo.maxNativeZoom, maxZoom: 20, zIndex: 1,
        });
      });
      L.control.layers(null, photos, { collapsed: false }).addTo(map);
    }
    const api = config.api;
    const state = { colourBy: "cleared", drawing: false, ignoreClicksUntil: 0, result: null };
    const colours = {};
    Object.entries(config.legends).forEach(([mode, items]) => {
      colours[mode] = {};
      items.forEach((item) => { colours[mode][item.value] = item.colour; });
    });

    function fillOf(properties) {
      if (state.colourBy === "cleared") {
        return colours.cleared[properties.cleared ? "cleared" : "uncleared"];
      }
      return colours[state.colourBy][properties[state.colourBy]] || "#9e9e9e";
    }

    const parcels = L.vectorGrid.protobuf(config.tiles.parcels, {
      rendererFactory: L.canvas.tile,
      // Tiles of the first parcel zoom are scaled down one level further out,
      // so that a long corridor fitted to the screen still shows its parcels.
      minZoom: config.tiles.parcelsMinZoom - 1,
      minNativeZoom: config.tiles.parcelsMinZoom,
      maxNativeZoom: config.tiles.maxNativeZoom,
      zIndex: 2,
      fetchOptions: { credentials: "same-origin" },
      vectorTileLayerStyles: {
        parcels: (properties) => ({
          fill: true,
          fillColor: fillOf(properties),
          fillOpacity: config.style.fillOpacity,
          color: config.style.outline,
          weight: 0.6,
          opacity: 0.9,
        }),
      },
    }).addTo(map);
    const buildings = L.vectorGrid.protobuf(config.tiles.buildings, {
      rendererFactory: L.canvas.tile,
      minZoom: config.tiles.buildingsMinZoom,
      minNativeZoom: config.tiles.buildingsMinZoom,
      maxNativeZoom: config.tiles.maxNativeZoom,
      zIndex: 3,
      fetchOptions: { credentials: "same-origin" },
      vectorTileLayerStyles: {
        buildings: {
          fill: true, fillColor: config.style.building, fillOpacity: 0.55,
          color: config.style.building, weight: 0.8,
        },
      },
    }).addTo(map);

    // Tests (and people) can tell when the parcels on screen are drawn: the
    // canvases paint on the animation frame after the layer's load event.
    parcels.on("loading", () => { document.body.dataset.parcelsDrawn = "no"; });
    parcels.on("load", () => {
      requestAnimationFrame(() => requestAnimationFrame(() => {
        document.body.dataset.parcelsDrawn = "yes";
      }));
    });

    const boundary = L.geoJSON(project.boundary, {
      interactive: false, style: { color: "#14375e", weight: 2.5, fill: false },
    }).addTo(map);
    map.fitBounds(boundary.getBounds(), { padding: [10, 10] });

    const hint = L.control({ position: "bottomleft" });
    hint.onAdd = () => element("div", messages.zoomIn, { class: "map-hint" });
    hint.addTo(map);
    // Out there the tiles leave out parcels too small to see (tilesvc/vector.py).
    function updateHint() {
      hint.getContainer().hidden = map.getZoom() > config.tiles.parcelsMinZoom;
    }
    map.on("zoomend", updateHint);
    updateHint();

    // Colouring: the same style function reads the mode; a redraw applies it.
    document.querySelectorAll("input[name=colour-by]").forEach((input) => {
      input.addEventListener("change", () => {
        if (!input.checked) return;
        state.colourBy = input.value;
        document.querySelectorAll("ul[data-legend]").forEach((list) => {
          list.hidden = list.dataset.legend !== state.colourBy;
        });
        parcels.redraw();
      });
    });

    // --- Queries -------------------------------------------------------------
    const selection = L.featureGroup().addTo(map);
    const summary = document.getElementById("query-summary");
    const list = document.getElementById("query-list");
    const download = document.getElementById("query-download");
    const clear = document.getElementById("query-clear");

    async function failure(response) {
      try {
        const body = await response.json();
        if (body.error) return body.error[config.language === "en" ? "en" : "zh"];
        return body.detail || body.description || response.statusText;
      } catch (_error) {
        return response.statusText || String(response.status);
      }
    }

    function clearResult() {
      selection.clearLayers();
      state.result = null;
      summary.textContent = "";
      list.hidden = true;
      list.tBodies[0].replaceChildren();
      if (download) download.disabled = true;
      clear.disabled = true;
    }

    function showResult(geometry, features, truncated) {
      selection.clearLayers();
      if (geometry.type !== "Point") {
        L.geoJSON(geometry, {
          interactive: false,
          style: { color: "#0d47a1", weight: 1.5, dashArray: "4 4", fill: false },
        }).addTo(selection);
      }
      L.geoJSON({ type: "FeatureCollection", features }, {
        interactive: false, style: { color: "#0d47a1", weight: 3, fill: false },
      }).addTo(selection);
      const area = features.reduce((sum, f) => sum + Number(f.properties.area_m2), 0);
      state.result = { geometry, features, area, truncated };
      summary.textContent = features.length
        ? format(messages.hitSummary, { count: features.length, area: wholeNumber.format(area) })
        : messages.nothingHit;
      summary.dataset.count = String(features.length);
      summary.dataset.areaM2 = area.toFixed(2);
      if (truncated) {
        summary.append(element("br"), format(messages.truncated, { count: features.length }));
      }
      const rows = features.map((feature) => {
        const p = feature.properties;
        const row = element("tr", null, { "data-parcel": p.code, "data-id": feature.id });
        row.append(
          element("td", p.code),
          element("td", config.labels.land_class[p.land_class] || p.land_class),
          element("td", config.labels.status[p.status] || p.status),
          element("td", wholeNumber.format(Number(p.area_m2)), { class: "num" }),
        );
        return row;
      });
      list.tBodies[0].replaceChildren(...rows);
      list.hidden = features.length === 0;
      if (download) download.disabled = features.length === 0;
      clear.disabled = false;
    }

    function failed(reason) {
      summary.textContent = format(messages.failed, { reason });
      delete summary.dataset.count;
    }

    // Every parcel of the project the geometry touches, page after page.
    async function search(geometry) {
      summary.textContent = messages.searching;
      let features = [];
      let cursor = null;
      do {
        const body = { intersects: geometry, project: project.code, limit: api.pageSize };
        if (cursor) body.cursor = cursor;
        const response = await fetch(api.search, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrfToken },
          body: JSON.stringify(body),
        });
        if (!response.ok) { failed(await failure(response)); return null; }
        const page = await response.json();
        features = features.concat(page.features);
        cursor = page.next_cursor;
      } while (cursor && features.length < api.maxParcels);
      showResult(geometry, features, Boolean(cursor));
      return state.result;
    }

    async function queryPoint(latlng) {
      const lon = latlng.lng.toFixed(7);
      const lat = latlng.lat.toFixed(7);
      const query = new URLSearchParams({ point: `${lon},${lat}`, project: project.code });
      summary.textContent = messages.searching;
      const response = await fetch(`${api.parcels}?${query}`, { credentials: "same-origin" });
      if (!response.ok) { failed(await failure(response)); return; }
      const page = await response.json();
      const geometry = { type: "Point", coordinates: [Number(lon), Number(lat)] };
      showResult(geometry, page.features, Boolean(page.next_cursor));
      if (page.features.length) openPopup(page.features[0], latlng);
    }

    function detailUrl(template, id) {
      return template.replace("/0/", `/${encodeURIComponent(id)}/`);
    }

    async function openPopup(feature, latlng) {
      const p = feature.properties;
      const content = element("div", null, { class: "parcel-popup", "data-parcel": p.code });
      const facts = element("dl");
      [
        [messages.code, p.code],
        [messages.landClass, config.labels.land_class[p.land_class] || p.land_class],
        [messages.status, config.labels.status[p.status] || p.status],
        [messages.area, wholeNumber.format(Number(p.area_m2))],
      ].forEach(([term, value]) => facts.append(element("dt", term), element("dd", value)));
      content.append(facts);
      const popup = L.popup({ maxWidth: 320 }).setLatLng(latlng).setContent(content).openOn(map);
      const response = await fetch(detailUrl(api.parcel, feature.id), {
        credentials: "same-origin",
      });
      if (!response.ok) return;
      const detail = await response.json();
      content.append(element("h3", messages.buildings));
      if (detail.buildings.length) {
        const items = element("ul", null, { class: "buildings" });
        detail.buildings.forEach((b) => {
          const floors = format(messages.floors, { count: b.floors });
          items.append(element("li", `${b.code} · ${floors} · ${b.status_name}`));
        });
        content.append(items);
      } else {
        content.append(element("p", messages.noBuildings));
      }
      const link = element("a", messages.history, { href: detailUrl(api.history, feature.id) });
      const paragraph = element("p");
      paragraph.append(link);
      content.append(paragraph);
      popup.update();
    }

    map.on("click", (event) => {
      if (state.drawing || performance.now() < state.ignoreClicksUntil) return;
      queryPoint(event.latlng);
    });

    // Drawing: leaflet-draw's rectangle (press and drag) and polygon tools.
    L.drawLocal.draw.toolbar.buttons.rectangle = messages.drawRectangle;
    L.drawLocal.draw.toolbar.buttons.polygon = messages.drawPolygon;
    L.drawLocal.draw.toolbar.actions = { title: messages.cancelTitle, text: messages.cancel };
    L.drawLocal.draw.toolbar.finish = { title: messages.finishTitle, text: messages.finish };
    L.drawLocal.draw.toolbar.undo = { title: messages.undoTitle, text: messages.undo };
    L.drawLocal.draw.handlers.rectangle.tooltip.start = messages.rectangleStart;
    L.drawLocal.draw.handlers.simpleshape.tooltip.end = messages.shapeEnd;
    L.drawLocal.draw.handlers.polyline.error = messages.edgesCross;
    L.drawLocal.draw.handlers.polygon.tooltip = {
      start: messages.polygonStart, cont: messages.polygonContinue, end: messages.polygonEnd,
    };
    const shape = { color: "#0d47a1", weight: 2, fill: false };
    new L.Control.Draw({
      position: "topleft",
      edit: false,
      draw: {
        polyline: false, circle: false, marker: false, circlemarker: false,
        polygon: { shapeOptions: shape, allowIntersection: false, showArea: false },
        // showArea must stay off: leaflet-draw 1.0.4 measures the rectangle
        // with an undeclared variable and throws on the first drag otherwise.
        rectangle: { shapeOptions: shape, showArea: false },
      },
    }).addTo(map);
    map.on(L.Draw.Event.DRAWSTART, () => { state.drawing = true; });
    map.on(L.Draw.Event.DRAWSTOP, () => {
      state.drawing = false;
      // The click that ends a shape must not also ask for a point.
      state.ignoreClicksUntil = performance.now() + 400;
    });
    map.on(L.Draw.Event.CREATED, (event) => {
      map.closePopup();
      search(event.layer.toGeoJSON().geometry);
    });

    // Analysts and admins export the listed parcels through the export API, which
    // checks the role and logs the export; the drawn shape travels as GeoJSON.
    if (download) {
      download.addEventListener("click", () => {
        if (!state.result || !config.api.export) return;
        const [format, encoding] = document.getElementById("query-format").value.split("-");
        // POSTed as a form: a drawn polygon can be longer than a URL may be, and
        // the browser then saves the answer as the download it is.
        const fields = {
          csrfmiddlewaretoken: config.csrfToken, format, status: "all",
          project: project.code, geometry: JSON.stringify(state.result.geometry),
        };
        if (encoding === "gbk") fields.encoding = "GBK";
        const form = element("form", null, { method: "post", action: config.api.export });
        Object.entries(fields).forEach(([name, value]) => {
          form.append(element("input", null, { type: "hidden", name, value }));
        });
        document.body.append(form);
        form.submit();
        form.remove();
      });
    }
    clear.addEventListener("click", clearResult);

    window.registryMap = { map, parcels, buildings, boundary, selection, state, config, search };
    document.body.dataset.mapReady = "yes";
  }

  if (config.project) projectPage(); else districtPage();
})();
