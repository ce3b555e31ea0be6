/* Liquidity heatmap layer: the cells, best bid/ask lines, trade dots and "book not live"
   shading painted on a <canvas> laid over the Plotly plot area of #heatmap-chart (Plotly keeps
   the axes, zoom and pan; see components/heatmap.py).

   The server sends a "full" layer (every column) or an "append" layer (the new columns and
   their dots). The cells live in an offscreen image of one pixel per cell; an append shifts
   it left by the dropped columns and writes only the new columns, then the image is blitted
   (scaled to the axes) with the lines and dots: a few ms, whatever Plotly would redraw.
   After an append the canvas is painted at once where the x axis is going, then (next
   frame) the invisible span trace moves to the new last column (Plotly.react: the x axis
   follows by autorange unless the user zoomed it, which uirevision keeps). Any
   Plotly redraw (zoom, pan, resize, a new figure) re-blits. Hover shows the cell or dot under
   the pointer; a click (not a drag) sets the graph's clickData to that price, as a Plotly
   click would (the price alert form reads it). After each painted layer the graph element
   fires "heatmaplayer:painted", and "heatmaplayer:axes" once Plotly moved the x axis to
   the new columns (the bench times both). */
(function () {
  var layers = {};

  function rgb(hex) {
    var n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  function graphDiv(id) {
    return document.querySelector("#" + id + " .js-plotly-plot");
  }

  function layerOf(id) {
    if (!layers[id]) {
      var off = document.createElement("canvas");
      layers[id] = { id: id, model: null, off: off, canvas: null, tip: null, gd: null };
    }
    return layers[id];
  }

  /* RGBA of a signed cell value: transparent when null or under the lower cut-off, else the
     side's colour with opacity 0.25 at the lower cut-off rising to 1 at the upper one. */
  function paintCell(m, v, data, o) {
    var a = v === null ? 0 : Math.abs(v);
    if (!(a > 0) || a < m.lower) {
      data[o + 3] = 0;
      return;
    }
    var span = m.upper - m.lower;
    var f = span > 0 ? Math.min(1, (a - m.lower) / span) : 1;
    var c = v > 0 ? m.bidRgb : m.askRgb;
    data[o] = c[0];
    data[o + 1] = c[1];
    data[o + 2] = c[2];
    data[o + 3] = Math.round(255 * (0.25 + 0.75 * f));
  }

  /* Columns [first, first + count) of the model written into the offscreen image. */
  function writeColumns(layer, first, count) {
    var m = layer.model;
    if (!count || !m.rows) return;
    var ctx = layer.off.getContext("2d");
    var image = ctx.createImageData(count, m.rows);
    var data = image.data;
    for (var c = 0; c < count; c++) {
      var col = m.z[first + c];
      for (var r = 0; r < m.rows; r++) {
        paintCell(m, col[r], data, ((m.rows - 1 - r) * count + c) * 4);
      }
    }
    ctx.putImageData(image, first, 0);
  }

  function setFull(layer, p) {
    var m = {
      rev: p.rev, x0: p.x0, end: p.end, dx: p.dx, keep: p.keep, y0: p.y0, dy: p.dy,
      rows: p.rows, z: p.z, live: p.live, bid: p.bid, ask: p.ask, upper: p.upper,
      lower: p.lower, dots: p.dots, unit: p.unit, pd: p.price_decimals, colours: p.colours,
      bidRgb: rgb(p.colours.bid), askRgb: rgb(p.colours.ask)
    };
    layer.model = m;
    layer.off.width = Math.max(1, m.keep);
    layer.off.height = Math.max(1, m.rows);
    writeColumns(layer, 0, m.z.length);
  }

  function append(layer, p) {
    var m = layer.model;
    if (!m || m.rev !== p.rev || m.end !== p.from) return false;
    var added = p.z.length;
    var drop = Math.max(0, m.z.length + added - m.keep);
    ["z", "live", "bid", "ask"].forEach(function (k) {
      m[k] = m[k].slice(drop).concat(p[k]);
    });
    m.x0 += drop * m.dx;
    m.end = p.end;
    layer.appended = (layer.appended || 0) + 1;
    var dots = m.dots;
    var firstKept = 0;
    while (firstKept < dots.t.length && dots.t[firstKept] < m.x0) firstKept++;
    ["t", "p", "q", "side", "s"].forEach(function (k) {
      dots[k] = dots[k].slice(firstKept).concat(p.dots[k]);
    });
    if (p.upper !== undefined) {
      m.upper = p.upper;
      m.lower = p.lower;
      writeColumns(layer, 0, m.z.length);
      return true;
    }
    var ctx = layer.off.getContext("2d");
    if (drop) {
      ctx.globalCompositeOperation = "copy";
      ctx.drawImage(layer.off, -drop, 0);
      ctx.globalCompositeOperation = "source-over";
    }
    writeColumns(layer, m.z.length - added, added);
    return true;
  }

  function ensureCanvas(layer, gd) {
    var container = gd.querySelector(".svg-container");
    if (!container) return null;
    if (!layer.canvas || !layer.canvas.isConnected) {
      var canvas = document.createElement("canvas");
      canvas.className = "heatmap-layer";
      canvas.style.position = "absolute";
      canvas.style.pointerEvents = "none";
      var first = container.querySelector("svg.main-svg");
      container.insertBefore(canvas, first ? first.nextSibling : null);
      layer.canvas = canvas;
      var tip = document.createElement("div");
      tip.className = "heatmap-tip";
      tip.style.cssText = "display:none;position:absolute;pointer-events:none;z-index:5;" +
        "background:#222;color:#dee2e6;font-size:11px;padding:4px 6px;border-radius:3px;" +
        "white-space:pre;border:1px solid #444";
      container.appendChild(tip);
      layer.tip = tip;
    }
    if (layer.gd !== gd) bind(layer, gd);
    return layer.canvas;
  }

  function axes(gd) {
    var fl = gd._fullLayout;
    return fl && fl.xaxis && fl.yaxis && fl.xaxis._length ? [fl.xaxis, fl.yaxis] : null;
  }

  /* The whole plot area repainted from the model at the axes' current scale, or with the
     x axis spanning ``span`` ([first ms, last ms]: where autorange is about to put it). */
  function blit(layer, span) {
    var gd = graphDiv(layer.id);
    if (!gd) return false;
    var canvas = ensureCanvas(layer, gd);
    var ax = axes(gd);
    if (!canvas || !ax) return false;
    var xa = ax[0], ya = ax[1], dpr = window.devicePixelRatio || 1;
    var w = xa._length, h = ya._length;
    canvas.style.left = xa._offset + "px";
    canvas.style.top = ya._offset + "px";
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    var m = layer.model;
    if (!m || !m.z.length || !gd.data || !gd.data.length || !gd.data[0].x) return true;
    var n = m.z.length;
    var xs = span ? { l2p: function (t) { return (t - span[0]) * w / (span[1] - span[0]); } } : xa;
    var left = xs.l2p(m.x0), right = xs.l2p(m.x0 + n * m.dx);
    var top = ya.l2p(m.y0 + m.rows * m.dy), bottom = ya.l2p(m.y0);
    ctx.imageSmoothingEnabled = false;
    if (m.rows) ctx.drawImage(layer.off, 0, 0, n, m.rows, left, top, right - left, bottom - top);
    notLive(ctx, m, xs, h);
    line(ctx, m, m.bid, m.colours.bid, xs, ya);
    line(ctx, m, m.ask, m.colours.ask, xs, ya);
    dots(ctx, m, xs, ya, w, h);
    return true;
  }

  /* Not-LIVE periods: shaded, each labelled unless its label would run into the previous
   * one (short periods side by side; hover still names every cell). */
  function notLive(ctx, m, xa, h) {
    ctx.font = "10px sans-serif";
    ctx.textAlign = "center";
    var half = ctx.measureText("book not live").width / 2, labelled = -Infinity;
    for (var i = 0; i < m.live.length; i++) {
      if (m.live[i]) continue;
      var j = i;
      while (j + 1 < m.live.length && !m.live[j + 1]) j++;
      var a = xa.l2p(m.x0 + i * m.dx), b = xa.l2p(m.x0 + (j + 1) * m.dx);
      ctx.fillStyle = "rgba(138, 148, 166, 0.10)";
      ctx.fillRect(a, 0, b - a, h);
      var centre = (a + b) / 2;
      if (centre - half > labelled + 6) {
        ctx.fillStyle = m.colours.muted;
        ctx.fillText("book not live", centre, 12);
        labelled = centre + half;
      }
      i = j;
    }
  }

  function line(ctx, m, values, colour, xa, ya) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.2;
    ctx.beginPath();
    var open = false;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null) { open = false; continue; }
      var y = ya.l2p(v), a = xa.l2p(m.x0 + i * m.dx);
      if (open) ctx.lineTo(a, y); else ctx.moveTo(a, y);
      ctx.lineTo(xa.l2p(m.x0 + (i + 1) * m.dx), y);
      open = true;
    }
    ctx.stroke();
  }

  function dots(ctx, m, xa, ya, w, h) {
    var d = m.dots;
    ctx.lineWidth = 0.5;
    ctx.strokeStyle = "#111";
    ctx.globalAlpha = 0.75;
    [1, -1].forEach(function (side) {
      ctx.fillStyle = side > 0 ? m.colours.bid : m.colours.ask;
      ctx.beginPath();
      for (var i = 0; i < d.t.length; i++) {
        if (d.side[i] !== side) continue;
        var x = xa.l2p(d.t[i]), y = ya.l2p(d.p[i]), r = d.s[i] / 2;
        if (x < -r || x > w + r || y < -r || y > h + r) continue;
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, 2 * Math.PI);
      }
      ctx.fill();
      ctx.stroke();
    });
    ctx.globalAlpha = 1;
  }

  function clock(t) {
    return new Date(t).toISOString().slice(11, 19);
  }

  /* What is under plot-area pixel (px, py): a dot, else a cell; null outside the grid. */
  function pick(layer, xa, ya, px, py) {
    var m = layer.model;
    if (!m || !m.z.length) return null;
    var d = m.dots;
    for (var i = d.t.length - 1; i >= 0; i--) {
      var dx = xa.l2p(d.t[i]) - px, dy = ya.l2p(d.p[i]) - py, r = d.s[i] / 2 + 2;
      if (dx * dx + dy * dy <= r * r) {
        return (d.side[i] > 0 ? "taker buys" : "taker sells") + "\n" + clock(d.t[i]) +
          "\nprice " + d.p[i].toFixed(m.pd) + "\nqty " + d.q[i];
      }
    }
    var t = xa.p2l(px), price = ya.p2l(py);
    var c = Math.floor((t - m.x0) / m.dx), r2 = Math.floor((price - m.y0) / m.dy);
    if (c < 0 || c >= m.z.length || r2 < 0 || r2 >= m.rows) return null;
    var head = clock(m.x0 + c * m.dx) + "\nprice " + price.toFixed(m.pd) + "\n";
    if (!m.live[c]) return head + "book not live";
    var v = m.z[c][r2];
    return head + "resting " + (v === null ? "–" : Math.abs(v) + " " + m.unit +
      (v >= 0 ? " (bids)" : " (asks)"));
  }

  function plotPoint(gd, layer, evt) {
    var ax = axes(gd);
    if (!ax || !layer.canvas) return null;
    var box = layer.canvas.getBoundingClientRect();
    var px = evt.clientX - box.left, py = evt.clientY - box.top;
    if (px < 0 || py < 0 || px > box.width || py > box.height) return null;
    return { xa: ax[0], ya: ax[1], px: px, py: py };
  }

  function bind(layer, gd) {
    layer.gd = gd;
    var redraw = function () { blit(layer); };
    gd.on("plotly_afterplot", redraw);
    gd.on("plotly_relayouting", redraw);
    var down = null;
    gd.addEventListener("mousemove", function (evt) {
      var at = plotPoint(gd, layer, evt);
      var text = at && pick(layer, at.xa, at.ya, at.px, at.py);
      if (!text || evt.buttons) { layer.tip.style.display = "none"; return; }
      layer.tip.textContent = text;
      layer.tip.style.left = (at.xa._offset + at.px + 14) + "px";
      layer.tip.style.top = (at.ya._offset + at.py + 14) + "px";
      layer.tip.style.display = "block";
    });
    gd.addEventListener("mouseleave", function () { layer.tip.style.display = "none"; });
    gd.addEventListener("mousedown", function (evt) { down = [evt.clientX, evt.clientY]; }, true);
    gd.addEventListener("click", function (evt) {
      var moved = !down || Math.abs(evt.clientX - down[0]) + Math.abs(evt.clientY - down[1]) > 4;
      var at = !moved && plotPoint(gd, layer, evt);
      if (!at || !layer.model || !window.dash_clientside.set_props) return;
      var point = { x: at.xa.p2l(at.px), y: at.ya.p2l(at.py), curveNumber: 0, pointNumber: 0 };
      window.dash_clientside.set_props(layer.id, { clickData: { points: [point] } });
    });
  }

  function painted(gd, what) {
    gd.dispatchEvent(new CustomEvent("heatmaplayer:" + what));
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    heatmapLayer: {
      /* The layer's data as drawn (the bench builds Plotly's equivalent figure from it). */
      model: function (graphId) {
        return layers[graphId] ? layers[graphId].model : null;
      },
      /* What the layer holds (tests and the bench read it). */
      inspect: function (graphId) {
        var layer = layers[graphId], m = layer && layer.model;
        if (!m) return null;
        var cells = 0;
        m.z.forEach(function (col) {
          col.forEach(function (v) { if (v !== null) cells++; });
        });
        return { rev: m.rev, columns: m.z.length, x0: m.x0, end: m.end, dx: m.dx, rows: m.rows,
          y0: m.y0, dy: m.dy, cells: cells, dots: m.dots.t.length, canvas: !!layer.canvas,
          resyncs: layer.resyncs || 0, appended: layer.appended || 0, unit: m.unit,
          upper: m.upper, lower: m.lower };
      },
      paint: function (payload, graphId, redrawId) {
        var no = window.dash_clientside.no_update;
        if (!payload) return no;
        var layer = layerOf(graphId);
        if (payload.kind === "clear") {
          layer.model = null;
        } else if (payload.kind === "full") {
          setFull(layer, payload);
        } else if (!append(layer, payload)) {
          /* An append that does not continue the drawing (one was superseded before this
             callback ran): ask the server for the whole layer again. */
          var m0 = layer.model;
          if (m0 && payload.rev === m0.rev && payload.end <= m0.end) return no;
          layer.resyncs = (layer.resyncs || 0) + 1;
          window.dash_clientside.set_props(redrawId, { data: { resync: layer.resyncs } });
          return no;
        }
        var gd = graphDiv(graphId);
        if (!gd) return no;
        var span = gd.data && gd.data[0];
        var m = layer.model;
        var follow = gd._fullLayout && gd._fullLayout.xaxis && gd._fullLayout.xaxis.autorange;
        if (payload.kind === "append" && follow && span && span.x && m) {
          /* Cells and dots first, where the x axis is about to be (autorange spans the
             span trace exactly); Plotly moves the axes after that frame and re-blits. */
          var next = [m.x0, m.x0 + m.z.length * m.dx];
          blit(layer, next);
          painted(gd, "painted");
          requestAnimationFrame(function () {
            setTimeout(function () {
              /* not when a new drawing (figure and layer) replaced this one meanwhile */
              var current = gd.data && gd.data[0];
              if (layer.model !== m || !current || current.name !== span.name) return;
              var moved = Object.assign({}, current, { x: [m.x0, m.x0 + m.z.length * m.dx] });
              window.Plotly.react(gd, [moved].concat(gd.data.slice(1)), gd.layout)
                .then(function () { painted(gd, "axes"); });
            }, 0);
          });
        } else {
          blit(layer);
          painted(gd, "painted");
        }
        return no;
      }
    }
  });
})();
