/* Tapescope push page: the symbol's WebSocket streams drive the tape, the depth chart, the
 * flow panel, the status bar and the push badge; polling is the fallback while a socket is
 * down.
 *
 * Pushed trades are painted straight into #pushed-tape (an element React renders once and
 * never updates) inside the socket's onmessage, before anything else: no frame wait, no
 * React round. The charts (depth, flow) are the page's costliest main-thread work: their
 * redraws are coalesced (newest data only), spaced by their own cost (slow redraws on a
 * busy machine come less often), run one at a time when the page is idle and after a
 * pause in the trades, and wait while the chart is off screen or the page hidden. When
 * long tasks still take much of the main thread, the server-driven panels' pushed
 * intervals are stretched (load shedding). The status bar is painted from the status stream into #pushed-status.
 * State changes (live <-> down, status pushed or not) go through the push-state store,
 * which switches the polling intervals (app/callbacks/push.py). The flow panel goes on from
 * a server seed with every streamed trade (app/callbacks/flow_push.py). Message schemas:
 * docs/streams.md. */
(function () {
  "use strict";
  const RECONNECT_MS = 1000;
  const DEPTH_POINTS = 300;
  const BOOK_LEVELS = 1000;  // the server's depth chart draws at most this many a side, too
  const DATA_EXTENT = 1.5;  // the depth chart holds levels 1.5 × its zoom from the mid (depth.py)
  const DEPTH_PAINT_MS = 2000;  // a Plotly redraw is the page's costliest work: keep it rare
  const DEFAULT_TIERS = [100000, 250000, 1000000];
  const FLOW_PAINT_MS = 2000;  // the flow panel repaints at most every 2 s
  const QUIET_MS = 100;  // a chart redraw waits for this long a pause in the trades
  const CHART_SHARE = 0.03;  // a pushed chart's redraws take at most this share of the time
  const CHART_MAX_GAP_MS = 8000;  // ... but a shown chart is redrawn at least this often
  const BUSY_WINDOW_MS = 10000;  // the main thread's load is reviewed this often ...
  const BUSY_HIGH = 0.15;  // ... and above this share of it in long tasks ...
  const STRETCH = 2;  // ... the pushed intervals of the server-driven panels are this long ×
  const BUSY_LOW = 0.05;  // ... until it is back under this share
  const RECENTRE_SHARE = 0.5;  // (the depth chart recentres as app/callbacks/depth.py does)
  const STATUS_STALE_MS = 3000;  // no status message for this long: the polled bar is back
  const RECENT_TRADES = 5000;  // streamed trades kept to apply to a seed that arrives late
  const s = {config: null, generation: 0, sockets: [], open: {}, rows: [], lastId: null, state: null,
    pending: [], tape: null, tiersText: null, recent: [], recentAfter: null,
    flow: null, lastTradeAt: 0, chartTimer: null, chartAt: 0, chartIdle: false, charts: {},
    statusAt: 0, statusTimer: null};

  function wsBase() {
    return (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host;
  }

  function publishState() {
    const cfg = s.config;
    const state = cfg ? (s.open.trades === true ? "live" : "down") : "off";
    const status = state === "live" && s.open.status === true &&
      Date.now() - s.statusAt < STATUS_STALE_MS;
    document.body.classList.toggle("push-live", state === "live");
    const book = state === "live" && s.open.book === true;
    document.body.classList.toggle("push-status", status);
    const stretch = state === "live" ? s.stretch : 1;
    if (state === s.state && status === s.statusPushed && book === s.bookPushed &&
        stretch === s.stretched) {
      return;
    }
    s.stretched = stretch;
    s.statusPushed = status;
    s.bookPushed = book;
    s.state = state;
    if (state !== "live") {
      s.flow = null;  // the server renders the flow panel again
    }
    if (state === "down") {
      setBadge("push ○ disconnected: polling until the stream is back");
    }
    setTimeout(function () {
      window.dash_clientside.set_props("push-state", {data: {
        state: state,
        status: status,
        book: book,
        refresh_ms: cfg ? cfg.refresh_ms : null,
        slow_refresh_ms: cfg ? cfg.slow_refresh_ms : null,
        pushed_slow_refresh_ms: cfg ? cfg.pushed_slow_refresh_ms : null,
        pushed_refresh_ms: cfg ? cfg.pushed_refresh_ms : null,
        stretch: stretch,
      }});
    }, 0);
  }

  function setBadge(text) {
    const badge = document.getElementById("push-badge");
    if (badge && badge.textContent !== text) {  // the same text again: no style or layout work
      badge.textContent = text;
    }
  }

  function openStream(kind, path, onMessage, generation) {
    if (generation !== s.generation) {
      return;
    }
    const ws = new WebSocket(wsBase() + path());
    s.sockets.push(ws);
    if (kind === "book") {
      s.bookSocket = ws;
    }
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

  const formats = {};

  /* One Intl.NumberFormat per number of decimals, made once: toLocaleString with options
   * builds a new formatter on every call, the tape's costliest step per row. */
  function fmt(value, decimals) {
    const format = formats[decimals] || (formats[decimals] = new Intl.NumberFormat("en-US", {
      minimumFractionDigits: decimals, maximumFractionDigits: decimals,
    }));
    return format.format(value);
  }

  const tiersOf = {text: null, tiers: DEFAULT_TIERS};

  /* The tiers of the tape's input, parsed again only when its text changed. */
  function tapeTiers(text) {
    if (text !== tiersOf.text) {
      tiersOf.text = text;
      tiersOf.tiers = parseTiers(text);
    }
    return tiersOf.tiers;
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
  function tradeRow(t, tiers) {
    const cfg = s.config;
    const notional = t.price * t.qty;
    let tier = 0;  // tiers are sorted: count those reached without an array per row
    while (tier < tiers.length && notional >= tiers[tier]) {
      tier += 1;
    }
    return row("tape-row " + t.side + " tier-" + tier + " pushed",
      timeOfDay(t.time) + " " + fmt(t.price, cfg.price_decimals).padStart(14) + " " +
      fmt(t.qty, cfg.qty_decimals).padStart(13) + " " + fmt(notional, 0).padStart(13) + "  " + t.side);
  }

  /* Paint the trades that came since the last paint: new rows on top, the oldest beyond the
   * tape's length dropped — a few elements per frame. The whole tape is rebuilt only when
   * it is not on the page yet or the tiers changed. */
  function paintTape() {
    const target = document.getElementById("pushed-tape");
    const cfg = s.config;
    if (!target || !cfg) {
      return;
    }
    const tiersInput = document.getElementById("tape-tiers");
    const tiersText = tiersInput ? tiersInput.value : "";
    const tiers = tapeTiers(tiersText);
    const fresh = s.pending;
    s.pending = [];
    if (s.tape && target.contains(s.tape) && tiersText === s.tiersText && s.rows.length) {
      const fragment = document.createDocumentFragment();
      for (let i = fresh.length - 1; i >= Math.max(0, fresh.length - cfg.rows); i -= 1) {
        fragment.appendChild(tradeRow(fresh[i], tiers));
      }
      const header = s.tape.firstChild;
      if (header.nextSibling && header.nextSibling.className === "tape-empty") {
        header.nextSibling.remove();
      }
      s.tape.insertBefore(fragment, header.nextSibling);
      while (s.tape.childElementCount > cfg.rows + 1) {
        s.tape.lastChild.remove();
      }
      return;
    }
    const notionalTitle = ("notional " + cfg.quote_asset).trim();
    const tape = row("tape", "");
    tape.appendChild(row("tape-header", "time UTC".padEnd(12) + " " + "price".padStart(14) + " " +
      "qty".padStart(13) + " " + notionalTitle.padStart(13) + "  side"));
    for (const t of s.rows) {
      tape.appendChild(tradeRow(t, tiers));
    }
    if (!s.rows.length) {
      tape.appendChild(row("tape-empty", "no trades yet"));
    }
    target.replaceChildren(tape);
    s.tape = tape;
    s.tiersText = tiersText;
  }

  function onTrades(message) {
    s.lastTradeAt = performance.now();
    const fresh = [];
    for (const t of message.trades) {
      if (s.lastId === null || t.id > s.lastId) {
        fresh.push(t);
        if (s.recentAfter === null) {  // a live-only stream: the page has what follows
          s.recentAfter = t.id - 1;
        }
        s.lastId = t.id;
      }
    }
    if (fresh.length) {  // painted now, before the flow's bookkeeping or anything else
      s.pending = fresh;
      s.rows = fresh.slice().reverse().concat(s.rows).slice(0, s.config.rows);
      paintTape();
    }
    for (const t of fresh) {
      s.recent.push(t);
      applyFlow(t);
    }
    if (s.recent.length > 2 * RECENT_TRADES) {
      s.recent = s.recent.slice(-RECENT_TRADES);
      s.recentAfter = s.recent[0].id - 1;
    }
    if (s.flow && s.flow.dirty) {
      requestChart("flow");
    }
  }

  /* The flow panel from streamed trades (app/callbacks/flow_push.py): a seed from the server
   * (the window's trades, the CVD's last value, the last trade id it saw), then every trade
   * above that id. Same window (now - window, now] ending at the newest trade, same direction
   * thresholds (buy share of quantity), same CVD (notional band of the flow filter). */
  function flowSeed(seed) {
    if (!seed || s.state !== "live") {
      return window.dash_clientside.no_update;
    }
    if (s.flow && s.flow.key === seed.key && s.flow.seq === seed.seq) {
      return window.dash_clientside.no_update;
    }
    if (s.recentAfter !== null && (seed.last_id === null || seed.last_id < s.recentAfter)) {
      s.flow = null;  // trades between the seed and the kept ones are not here: wait for the next
      return "flow seed too old";
    }
    const t = seed.trades.t, q = seed.trades.q, v = seed.trades.v;
    s.flow = {key: seed.key, seq: seed.seq, seed: seed, t: t.slice(), q: q.slice(),
      v: v.slice(), head: 0, lastId: seed.last_id, now: t.length ? t[t.length - 1] : null,
      cvd: seed.cvd, cvdX: [], cvdY: [], dirty: true};
    for (const trade of s.recent) {
      applyFlow(trade);
    }
    requestChart("flow");
    return "flow seeded at trade " + seed.last_id;
  }

  function inBand(notional, band) {
    return (band[0] === null || notional >= band[0]) && (band[1] === null || notional <= band[1]);
  }

  function applyFlow(trade) {
    const f = s.flow;
    if (!f || (f.lastId !== null && trade.id <= f.lastId)) {
      return;
    }
    const notional = trade.price * trade.qty;
    const sign = trade.side === "buy" ? 1 : -1;
    f.t.push(trade.time);
    f.q.push(sign * notional);
    f.v.push(sign * trade.qty);
    f.now = f.now === null ? trade.time : Math.max(f.now, trade.time);
    if (inBand(notional, f.seed.band)) {
      f.cvd += sign * notional;
      f.cvdX.push(trade.time);  // a point for every trade, as the seed's line
      f.cvdY.push(Math.round(f.cvd * 100) / 100);
    }
    f.lastId = trade.id;
    f.dirty = true;
  }

  /* Run ``paint`` when the page is idle, within ``ms`` at the latest: a chart redraw then
   * rarely holds up the tape's next message. */
  function whenIdle(paint, ms) {
    if (window.requestIdleCallback) {
      window.requestIdleCallback(paint, {timeout: ms});
    } else {
      setTimeout(paint, 0);
    }
  }

  /* The chart redraws, one scheduler for all: a chart asks (``requestChart``) and is
   * redrawn once with its newest data; one chart per idle slot; not while trades are coming
   * in (less than QUIET_MS since the last trades message) unless the redraw is already a
   * whole gap late; not while its graph is off screen or the page hidden (it is redrawn
   * when it shows again). A chart's gap between redraws is its period, or longer when its
   * redraws are slow: its main-thread time (the smoothed duration of its last redraws)
   * stays under CHART_SHARE of the time, up to CHART_MAX_GAP_MS between redraws — on a
   * busy machine, where a Plotly redraw takes 100-300 ms, the charts redraw less often
   * instead of holding up the tape longer. */
  s.charts = {
    depth: {graph: "depth-chart", period: DEPTH_PAINT_MS,
      paint: function () { paintDepth(s.book); }},
    flow: {graph: "flow-meter", period: FLOW_PAINT_MS, paint: function () { paintFlow(); }},
  };
  for (const name in s.charts) {
    Object.assign(s.charts[name],
      {last: -Infinity, due: false, cost: 0, shown: true, watched: null});
  }

  function chartGap(c) {
    return Math.min(CHART_MAX_GAP_MS, Math.max(c.period, c.cost / CHART_SHARE));
  }

  /* Whether the chart's graph is on screen, kept by an IntersectionObserver (a graph not
   * rendered yet counts as shown, and is watched once it is). */
  function chartShown(c) {
    const el = document.getElementById(c.graph);
    if (el && el !== c.watched && window.IntersectionObserver) {
      if (!s.visibility) {
        s.visibility = new IntersectionObserver(function (entries) {
          for (const entry of entries) {
            for (const name in s.charts) {
              if (s.charts[name].watched === entry.target) {
                s.charts[name].shown = entry.isIntersecting;
              }
            }
          }
          scheduleCharts();
        });
      }
      if (c.watched) {
        s.visibility.unobserve(c.watched);
      }
      c.watched = el;
      s.visibility.observe(el);
    }
    return c.shown && !document.hidden;
  }

  document.addEventListener("visibilitychange", function () { scheduleCharts(); });

  function requestChart(name) {
    s.charts[name].due = true;
    scheduleCharts();
  }

  function nextChart() {
    let pick = null;
    for (const name in s.charts) {
      const c = s.charts[name];
      if (c.due && chartShown(c) &&
          (pick === null || c.last + chartGap(c) < pick.last + chartGap(pick))) {
        pick = c;
      }
    }
    return pick;
  }

  /* Set the timer for the chart due first (sooner than the pending timer, if any); while
   * a redraw waits for its idle slot, that slot schedules the next. */
  function scheduleCharts() {
    const pick = s.chartIdle ? null : nextChart();
    if (!pick) {
      return;
    }
    const at = pick.last + chartGap(pick);
    if (s.chartTimer !== null && s.chartAt <= at) {
      return;
    }
    clearTimeout(s.chartTimer);
    s.chartAt = at;
    s.chartTimer = setTimeout(runCharts, Math.max(0, at - performance.now()));
  }

  /* Whether ``pick`` should wait for the end of a burst of trades: a trades message came
   * less than QUIET_MS ago and the redraw is not a whole gap late yet. */
  function burstWait(pick, now) {
    const quiet = now - s.lastTradeAt;
    return quiet < QUIET_MS && now - (pick.last + chartGap(pick)) < chartGap(pick) ?
      QUIET_MS - quiet : 0;
  }

  function runCharts() {
    s.chartTimer = null;
    const pick = nextChart();
    if (!pick) {
      return;
    }
    const now = performance.now();
    const wait = burstWait(pick, now);
    if (wait > 0) {
      s.chartAt = now + wait;
      s.chartTimer = setTimeout(runCharts, wait);
      return;
    }
    s.chartIdle = true;
    whenIdle(function () {
      s.chartIdle = false;
      const started = performance.now();
      if (burstWait(pick, started) === 0 && chartShown(pick)) {  // else trades came meanwhile
        pick.due = false;
        pick.last = started;
        pick.paint();
        const took = performance.now() - started;
        pick.cost = pick.cost ? (pick.cost + took) / 2 : took;
      }
      scheduleCharts();
    }, chartGap(pick));
  }

  function direction(ratio, ratios) {
    if (ratio >= ratios.strong_buy) { return "strong_buy"; }
    if (ratio >= ratios.buy) { return "buy"; }
    if (ratio <= ratios.strong_sell) { return "strong_sell"; }
    if (ratio <= ratios.sell) { return "sell"; }
    return "neutral";  // also NaN: an empty window
  }

  function paintFlow() {
    const f = s.flow;
    const holder = document.getElementById("flow-meter");
    const gd = holder && holder.querySelector(".js-plotly-plot");
    if (!f || !f.dirty || !gd || !gd.data || !window.Plotly) {
      return;
    }
    while (f.head < f.t.length && f.t[f.head] <= f.now - f.seed.window_ms) {
      f.head += 1;
    }
    if (f.head > 4096) {
      f.t = f.t.slice(f.head); f.q = f.q.slice(f.head); f.v = f.v.slice(f.head); f.head = 0;
    }
    let buy = 0, sell = 0, buyQty = 0, qty = 0;
    for (let i = f.head; i < f.t.length; i += 1) {
      if (f.q[i] > 0) { buy += f.q[i]; buyQty += f.v[i]; } else { sell -= f.q[i]; }
      qty += Math.abs(f.v[i]);
    }
    const index = function (name) { return gd.data.findIndex(function (t) { return t.name === name; }); };
    const bi = index("buy"), si = index("sell"), ci = index("CVD");
    if (bi < 0 || si < 0 || ci < 0) {
      return;
    }
    f.dirty = false;
    const total = buy + sell;
    const buyPct = total > 0 ? 100 * buy / total : 0;
    const sellPct = total > 0 ? 100 - buyPct : 0;
    const seed = f.seed;
    const text = function (name, pct, volume) {
      return (name + " " + fmt(volume, 2) + " " + seed.unit + " (" + pct.toFixed(0) + "%)")
        .replace("  ", " ");
    };
    const line = gd.data[ci];
    let cvdX = line.x, cvdY = line.y;
    if (f.cvdX.length) {
      cvdX = Array.from(line.x).concat(f.cvdX);
      cvdY = Array.from(line.y).concat(f.cvdY);
      f.cvdX = [];
      f.cvdY = [];
    }
    const dir = direction(qty > 0 ? buyQty / qty : NaN, seed.ratios);
    const title = seed.label + ": " + (total > 0 ? (seed.labels[dir] || dir) : "no trades");
    const colour = dir.endsWith("buy") ? seed.colours.buy :
      dir.endsWith("sell") ? seed.colours.sell : seed.colours.neutral;
    const bars = gd.data[bi].y;
    window.Plotly.update(gd, {  // one redraw: bars, their text, the CVD line and the title
      x: [[buyPct], [sellPct], cvdX], y: [bars, bars, cvdY],
      text: [[text("buy", buyPct, buy)], [text("sell", sellPct, sell)], line.text],
    }, {"title.text": title, "title.font.color": colour,
      // new x data makes Plotly guess the axis type again: epoch ms would become "linear"
      "xaxis2.type": "date"}, [bi, si, ci]);
    holder.dataset.lastTradeId = String(f.lastId);
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

  /* Redraw the depth chart from the newest book message, at least DEPTH_PAINT_MS apart:
   * the two step traces, the mid line and the spread note in one Plotly.update, the x range
   * recentred (its width kept) when the mid has moved half of it. Only a LIVE, uncrossed
   * book is drawn (the stream sends no levels otherwise); the server's depth callback then
   * shows the notice (app/callbacks/depth.py renders on every tick unless the book is
   * LIVE). */
  function onBook(m) {
    s.book = m;
    if (m.sync_state === "LIVE" && m.bids.length && m.asks.length) {
      requestChart("depth");
    }
  }

  /* The band the depth chart draws, in basis points of the mid: its zoom preset (±%) times
   * DATA_EXTENT — the book stream sends only those levels (at most BOOK_LEVELS a side). */
  function bookBandBps() {
    const checked = document.querySelector("#depth-zoom input:checked");
    const pct = checked ? Number(checked.value) : 0.5;
    return Math.max(1, Math.ceil((Number.isFinite(pct) ? pct : 0.5) * DATA_EXTENT * 100));
  }

  /* A new zoom preset needs another band: the book socket is closed and reopens with it
   * (meanwhile the server draws the new preset's chart, as for any figure change). */
  document.addEventListener("change", function (event) {
    const zoom = document.getElementById("depth-zoom");
    if (zoom && zoom.contains(event.target) && s.bookSocket &&
        s.bookSocket.readyState === WebSocket.OPEN) {
      s.book = null;  // levels of the old band are not painted on the new preset's chart
      s.bookSocket.close();
    }
  });

  function paintDepth(m) {
    const gd = document.querySelector("#depth-chart .js-plotly-plot");
    if (!m || !gd || !gd.data || !gd.layout || !window.Plotly || m.sync_state !== "LIVE" ||
        !m.bids.length || !m.asks.length || m.bids[0][0] >= m.asks[0][0]) {
      return;
    }
    const bidIndex = gd.data.findIndex(function (t) { return t.name === "bids"; });
    const askIndex = gd.data.findIndex(function (t) { return t.name === "asks"; });
    if (bidIndex < 0 || askIndex < 0) {
      return;
    }
    const bids = cumulative(m.bids), asks = cumulative(m.asks);
    const bid = m.bids[0][0], ask = m.asks[0][0];
    const mid = (bid + ask) / 2, spread = ask - bid, pd = s.config.price_decimals;
    const layout = {};
    if (gd.layout.shapes && gd.layout.shapes.length && gd.layout.annotations &&
        gd.layout.annotations.length) {
      layout["shapes[0].x0"] = mid;
      layout["shapes[0].x1"] = mid;
      layout["annotations[0].x"] = mid;
      layout["annotations[0].text"] = "mid " + fmt(mid, pd) + " · spread " + fmt(spread, pd) +
        " (" + (spread / mid * 1e4).toFixed(3) + " bps)";
    }
    const range = gd.layout.xaxis && gd.layout.xaxis.range;
    if (range && range.length === 2) {
      const half = (range[1] - range[0]) / 2, centre = (range[0] + range[1]) / 2;
      if (Math.abs(mid - centre) > RECENTRE_SHARE * half) {
        layout["xaxis.range"] = [mid - half, mid + half];
      }
    }
    window.Plotly.update(gd, {
      x: [bids.x, asks.x], y: [bids.y, asks.y], customdata: [bids.notional, asks.notional],
    }, layout, [bidIndex, askIndex]);
    document.getElementById("depth-chart").dataset.lastUpdateId = String(m.last_update_id);
  }

  /* The status bar from the status stream: the same badges as components/status_bar.py,
   * painted into #pushed-status (shown instead of the polled bar while the stream is
   * fresh: a message at most STATUS_STALE_MS old). */
  function onStatus(m) {
    const target = document.getElementById("pushed-status");
    s.statusAt = Date.now();
    if (target) {
      const items = m.items.map(function (item) {
        const badge = document.createElement("span");
        badge.className = "status-item status-" + item.level;
        const label = document.createElement("span");
        label.className = "status-label";
        label.textContent = item.label;
        badge.appendChild(label);
        badge.appendChild(document.createTextNode(item.value));
        return badge;
      });
      target.replaceChildren.apply(target, items);
    }
    publishState();
  }

  /* Load shedding while pushed: the page's main thread is watched (long tasks, ≥ 50 ms);
   * when they took more than BUSY_HIGH of the last BUSY_WINDOW_MS the server-driven
   * panels' pushed intervals are stretched ×STRETCH (fewer Dash callbacks and Plotly
   * redraws to hold up the tape), and back to ×1 under BUSY_LOW. */
  s.busy = 0;
  s.busySince = performance.now();
  s.stretch = 1;
  if (window.PerformanceObserver && PerformanceObserver.supportedEntryTypes &&
      PerformanceObserver.supportedEntryTypes.includes("longtask")) {
    new PerformanceObserver(function (list) {
      for (const entry of list.getEntries()) {
        s.busy += entry.duration;
      }
    }).observe({type: "longtask"});
    setInterval(function () {
      const now = performance.now();
      const share = s.busy / (now - s.busySince);
      s.busy = 0;
      s.busySince = now;
      s.stretch = share > BUSY_HIGH ? STRETCH : share < BUSY_LOW ? 1 : s.stretch;
      publishState();
    }, BUSY_WINDOW_MS);
  }

  function watchStatus(generation) {
    clearInterval(s.statusTimer);
    s.statusTimer = setInterval(function () {
      if (generation === s.generation) {
        publishState();  // a status stream gone quiet gives the bar back to polling
      }
    }, STATUS_STALE_MS / 3);
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
      s.pending = [];
      s.tape = null;
      // The stream starts after the trades the server's snapshot had when the page asked
      // (config.from_id), so a flow seed from that snapshot or a newer one misses none.
      s.lastId = config && config.from_id !== undefined ? config.from_id : null;
      s.recent = [];
      s.recentAfter = s.lastId;
      s.flow = null;
      s.book = null;
      s.statusAt = 0;
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
      openStream("book", function () {
        return "/ws/asset/" + symbol + "/book/?levels=" + BOOK_LEVELS + "&band_bps=" + bookBandBps();
      }, onBook, generation);
      openStream("status", function () { return "/ws/asset/" + symbol + "/status/"; },
        onStatus, generation);
      watchStatus(generation);
      return "push streams of " + config.symbol;
    },

    flowSeed: flowSeed,

    pollingFor: function (pushState) {
      const state = (pushState && pushState.state) || "off";
      const normal = (pushState && pushState.refresh_ms) || 500;
      const slow = (pushState && pushState.slow_refresh_ms) || 2000;
      const live = state === "live";
      const stretch = (pushState && pushState.stretch) || 1;
      return [live, live ? stretch * pushState.pushed_refresh_ms : normal,
        live ? stretch * pushState.pushed_slow_refresh_ms : slow, "push-badge " + state];
    },
  }});
})();
