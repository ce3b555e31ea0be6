/* Tapescope push page: the symbol's WebSocket streams drive the tape, the depth traces and
 * the push badge; polling is the fallback while the trades socket is down.
 *
 * Pushed trades are painted straight into #pushed-tape (an element React renders once and
 * never updates), not through Dash props: one DOM write per frame, no React round. State
 * changes (live <-> down) go through the push-state store, which switches the polling
 * intervals (app/callbacks/push.py). Message schemas: docs/streams.md. */
(function () {
  "use strict";
  const RECONNECT_MS = 1000;
  const DEPTH_POINTS = 300;
  const BOOK_LEVELS = 200;
  const DEPTH_PAINT_MS = 1000;  // a Plotly redraw is the page's costliest work: keep it rare
  const DEFAULT_TIERS = [100000, 250000, 1000000];
  const s = {config: null, generation: 0, sockets: [], open: {}, rows: [], lastId: null, state: null,
    paintQueued: false};

  function wsBase() {
    return (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host;
  }

  function publishState() {
    const cfg = s.config;
    const state = cfg ? (s.open.trades === true ? "live" : "down") : "off";
    document.body.classList.toggle("push-live", state === "live");
    if (state === s.state) {
      return;
    }
    s.state = state;
    if (state === "down") {
      setBadge("push ○ disconnected: polling until the stream is back");
    }
    setTimeout(function () {
      window.dash_clientside.set_props("push-state", {data: {
        state: state,
        refresh_ms: cfg ? cfg.refresh_ms : null,
        pushed_refresh_ms: cfg ? cfg.pushed_refresh_ms : null,
      }});
    }, 0);
  }

  function setBadge(text) {
    const badge = document.getElementById("push-badge");
    if (badge) {
      badge.textContent = text;
    }
  }

  function openStream(kind, path, onMessage, generation) {
    if (generation !== s.generation) {
      return;
    }
    const ws = new WebSocket(wsBase() + path());
    s.sockets.push(ws);
    ws.onopen = function () {
      s.open[kind] = true;
      publishState();
    };
    ws.onmessage = function (event) {
      if (generation === s.generation) {
        onMessage(JSON.parse(event.data));
      }
    };
    ws.onclose = function (event) {
      s.open[kind] = false;
      if (generation !== s.generation) {
        return;
      }
      publishState();
      if (event.code === 4404) {
        return;  // unknown symbol: polling shows the server's message
      }
      setTimeout(function () { openStream(kind, path, onMessage, generation); }, RECONNECT_MS);
    };
  }

  function fmt(value, decimals) {
    return value.toLocaleString("en-US", {
      minimumFractionDigits: decimals, maximumFractionDigits: decimals,
    });
  }

  function parseTiers(text) {
    const scale = {k: 1e3, m: 1e6, b: 1e9};
    const tiers = [];
    for (const part of String(text || "").replace(/;/g, ",").split(",")) {
      let token = part.trim().toLowerCase().replace(/_/g, "");
      const unit = scale[token.slice(-1)];
      if (unit) {
        token = token.slice(0, -1);
      }
      const value = Number(token) * (unit || 1);
      if (token !== "" && Number.isFinite(value) && value > 0) {
        tiers.push(value);
      }
    }
    return tiers.length ? Array.from(new Set(tiers)).sort(function (a, b) { return a - b; })
      : DEFAULT_TIERS;
  }

  function timeOfDay(ms) {
    const d = new Date(ms);
    const pad = function (n, w) { return String(n).padStart(w, "0"); };
    return pad(d.getUTCHours(), 2) + ":" + pad(d.getUTCMinutes(), 2) + ":" +
      pad(d.getUTCSeconds(), 2) + "." + pad(d.getUTCMilliseconds(), 3);
  }

  function row(className, text) {
    const el = document.createElement("div");
    el.className = className;
    el.textContent = text;
    return el;
  }

  /* The same rows as components/trade_tape.py: time, price, qty, notional, side; classes
   * for the side and the large-trade tier reached. */
  function paintTape() {
    const target = document.getElementById("pushed-tape");
    const cfg = s.config;
    if (!target || !cfg) {
      return;
    }
    const tiersInput = document.getElementById("tape-tiers");
    const tiers = parseTiers(tiersInput ? tiersInput.value : "");
    const notionalTitle = ("notional " + cfg.quote_asset).trim();
    const tape = row("tape", "");
    tape.appendChild(row("tape-header", "time UTC".padEnd(12) + " " + "price".padStart(14) + " " +
      "qty".padStart(13) + " " + notionalTitle.padStart(13) + "  side"));
    for (const t of s.rows) {
      const notional = t.price * t.qty;
      const tier = tiers.filter(function (x) { return notional >= x; }).length;
      tape.appendChild(row("tape-row " + t.side + " tier-" + tier + " pushed",
        timeOfDay(t.time) + " " + fmt(t.price, cfg.price_decimals).padStart(14) + " " +
        fmt(t.qty, cfg.qty_decimals).padStart(13) + " " + fmt(notional, 0).padStart(13) + "  " + t.side));
    }
    if (!s.rows.length) {
      tape.appendChild(row("tape-empty", "no trades yet"));
    }
    target.replaceChildren(tape);
  }

  function onTrades(message) {
    const fresh = [];
    for (const t of message.trades) {
      if (s.lastId === null || t.id > s.lastId) {
        fresh.push(t);
        s.lastId = t.id;
      }
    }
    if (fresh.length) {
      s.rows = fresh.reverse().concat(s.rows).slice(0, s.config.rows);
      if (!s.paintQueued) {  // one tape rebuild per frame, however many messages came
        s.paintQueued = true;
        window.requestAnimationFrame(function () {
          s.paintQueued = false;
          paintTape();
        });
      }
    }
  }

  function onPrices(m) {
    const pd = s.config.price_decimals;
    const top = m.best_bid === null ? "book " + m.sync_state :
      "bid " + fmt(m.best_bid, pd) + " / ask " + fmt(m.best_ask, pd);
    const last = m.last_price === null ? "" : " · last " + fmt(m.last_price, pd);
    if (s.state === "live") {
      setBadge("push ● " + m.symbol + " " + top + last);
    }
  }

  function cumulative(levels) {
    const step = Math.max(1, Math.ceil(levels.length / DEPTH_POINTS));
    const x = [], y = [], notional = [];
    let qty = 0, quote = 0;
    levels.forEach(function (level, i) {
      qty += level[1];
      quote += level[0] * level[1];
      if (i % step === 0 || i === levels.length - 1) {
        x.push(level[0]);
        y.push(qty);
        notional.push(Math.round(quote));
      }
    });
    return {x: x, y: y, notional: notional};
  }

  /* Redraw the depth chart's two step traces from the newest LIVE book message, at most
   * once per DEPTH_PAINT_MS (the server's figure keeps its layout, overlays and zoom). */
  function onBook(m) {
    s.book = m;
    if (!s.bookTimer) {
      s.bookTimer = setTimeout(function () {
        s.bookTimer = null;
        paintDepth(s.book);
      }, DEPTH_PAINT_MS);
    }
  }

  function paintDepth(m) {
    const gd = document.querySelector("#depth-chart .js-plotly-plot");
    if (!gd || !gd.data || !m.bids.length || !m.asks.length || !window.Plotly) {
      return;
    }
    const bidIndex = gd.data.findIndex(function (t) { return t.name === "bids"; });
    const askIndex = gd.data.findIndex(function (t) { return t.name === "asks"; });
    if (bidIndex < 0 || askIndex < 0) {
      return;
    }
    const bids = cumulative(m.bids), asks = cumulative(m.asks);
    window.Plotly.restyle(gd, {
      x: [bids.x, asks.x], y: [bids.y, asks.y], customdata: [bids.notional, asks.notional],
    }, [bidIndex, askIndex]);
  }

  function closeAll() {
    s.generation += 1;
    for (const ws of s.sockets) {
      ws.onclose = null;
      ws.close();
    }
    s.sockets = [];
    s.open = {};
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {tapescope: {
    connect: function (config, search) {
      closeAll();
      s.rows = [];
      s.lastId = null;
      const off = /(^|[?&])push=off(&|$)/.test(search || "");
      s.config = (!config || off || !("WebSocket" in window)) ? null : config;
      paintTape();
      publishState();
      if (!s.config) {
        setBadge(off ? "push off (?push=off): polling" : "");
        return off ? "push off" : "push unavailable";
      }
      const symbol = encodeURIComponent(config.symbol);
      const generation = s.generation;
      openStream("trades", function () {
        return "/ws/asset/" + symbol + "/trades/" + (s.lastId === null ? "" : "?from_id=" + s.lastId);
      }, onTrades, generation);
      openStream("prices", function () { return "/ws/asset/" + symbol + "/prices/"; },
        onPrices, generation);
      openStream("book", function () { return "/ws/asset/" + symbol + "/book/?levels=" + BOOK_LEVELS; },
        onBook, generation);
      return "push streams of " + config.symbol;
    },

    pollingFor: function (pushState) {
      const state = (pushState && pushState.state) || "off";
      const normal = (pushState && pushState.refresh_ms) || 500;
      const live = state === "live";
      return [live, live ? pushState.pushed_refresh_ms : normal, "push-badge " + state];
    },
  }});
})();
