// The dashboard page's script (runs in the browser; lib/dashboard.js inlines it
// under the response's CSP nonce). It loads uPlot from the same handler
// (`?asset=`), draws one chart per group, and refreshes from `?format=json`
// every refreshMs without reloading the page. Every URL it uses is this page's
// own, with the page's query kept (so a query-string token keeps working).
/* global document, window, location, matchMedia, ResizeObserver, getComputedStyle, devicePixelRatio, uPlot */
'use strict'
;(function dashboard() {
  const config = JSON.parse(document.getElementById('dashboard-config').textContent)
  const T = config.thresholds
  const HOUR_S = 3600
  const stepS = config.stepMs / 1000
  const refreshS = config.refreshMs / 1000
  /** A time gap longer than this (s) between two samples is drawn as a gap, not a line. */
  const GAP_S = 3 * Math.max(stepS, refreshS)
  /** Live points kept: one hour at refreshMs. */
  const LIVE_MAX = Math.ceil(HOUR_S / refreshS) + 1

  const state = { history: [], live: [], charts: [], latest: null, refreshes: 0, timer: null, inFlight: false }

  // ── URLs: this page's own, with its query kept ────────────────────────────
  function ownUrl(set) {
    const url = new URL(location.href)
    url.searchParams.delete('asset')
    url.searchParams.delete('format')
    for (const [k, v] of Object.entries(set)) url.searchParams.set(k, v)
    return url.pathname + url.search
  }

  function load(tag, attributes) {
    return new Promise((resolve, reject) => {
      const element = document.createElement(tag)
      Object.assign(element, attributes)
      element.onload = resolve
      element.onerror = () => reject(new Error(`could not load ${attributes.src || attributes.href}`))
      document.head.appendChild(element)
    })
  }

  // ── Formatting ────────────────────────────────────────────────────────────
  const num = (v) => (v == null ? '–' : Math.abs(v) >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : Math.abs(v) >= 1e4 ? `${(v / 1e3).toFixed(1)}k` : String(Math.round(v * 100) / 100))
  const int = (v) => (v == null ? '–' : Math.abs(v) >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : Math.abs(v) >= 1e4 ? `${(v / 1e3).toFixed(0)}k` : String(Math.round(v)))
  /** A number and its unit never part at a line end. */
  const NBSP = '\u00a0'
  const pct = (v) => (v == null ? '–' : `${v >= 10 || v === 0 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2)}${NBSP}%`)
  const ms = (v) => (v == null ? '–' : `${v >= 100 ? v.toFixed(0) : v >= 1 ? +v.toFixed(1) : +v.toFixed(3)}${NBSP}ms`)
  function bytes(v) {
    if (v == null) return '–'
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
    let i = 0
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024
      i++
    }
    return `${v >= 100 || i === 0 ? v.toFixed(0) : +v.toFixed(1)}${NBSP}${units[i]}`
  }
  function duration(s) {
    if (s < 60) return `${s} s`
    if (s < 3600) return `${Math.floor(s / 60)} min`
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`
  }
  const lookups = (hits, misses) => hits + misses > 0
  /** Axis labels: as many decimals as the step between them needs. */
  const axisPct = (v) => `${+v.toFixed(2)}${NBSP}%`
  const two = (n) => String(n).padStart(2, '0')
  function clock(t, seconds) {
    const d = new Date(t * 1000)
    return `${two(d.getHours())}:${two(d.getMinutes())}${seconds ? `:${two(d.getSeconds())}` : ''}`
  }
  /** Tick steps of the time axis (s) and of counting axes: whole numbers only. */
  const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]
  const INT_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2.5e3, 5e3, 1e4, 2e4, 2.5e4, 5e4, 1e5, 2e5, 2.5e5, 5e5, 1e6, 2e6, 5e6, 1e7]

  // ── The charts ────────────────────────────────────────────────────────────
  const CHARTS = [
    {
      id: 'ops', title: 'Operations per second', note: 'server', fmt: num, from0: true, integer: true,
      series: [{ label: 'ops/s', color: 's1', value: (s) => s.stats.opsPerSec }],
    },
    {
      id: 'hit-rate', title: 'Cache hit rate', note: `alert below ${T.minHitRate * 100} %`, fmt: pct, axisFmt: axisPct, range: [0, 100],
      series: [
        { label: 'this process', color: 's1', value: (s) => (lookups(s.cache.hits, s.cache.misses) ? s.cache.hitRate * 100 : null) },
        { label: 'server', color: 's2', value: (s) => (lookups(s.stats.keyspaceHits, s.stats.keyspaceMisses) ? s.stats.hitRate * 100 : null) },
        { label: 'alert line', threshold: true, value: () => T.minHitRate * 100 },
      ],
    },
    {
      // The figure the highMemory alert judges: used memory as a share of
      // maxmemory (of the machine's memory when there is no maxmemory); the
      // legend adds the bytes.
      id: 'memory', title: 'Memory', note: 'used against maxmemory', fmt: pct, axisFmt: axisPct, range: [0, 100], grow: true,
      series: [
        {
          label: 'used', color: 's1', value: (s) => s.memory.usagePercent,
          legend: (s) => `${bytes(s.memory.usedBytes)} of ${s.memory.maxmemoryBytes ? bytes(s.memory.maxmemoryBytes) : 'system memory (no maxmemory)'}`,
        },
        { label: 'alert line', threshold: true, value: () => T.maxMemoryPercent },
      ],
    },
    {
      id: 'latency', title: 'Command latency', note: 'this process · log scale', fmt: ms, log: true,
      series: [
        { label: 'p50', color: 's1', value: (s) => (s.client.latencyP50Ms > 0 ? s.client.latencyP50Ms : null) },
        { label: 'p99', color: 's2', value: (s) => (s.client.latencyP99Ms > 0 ? s.client.latencyP99Ms : null) },
        { label: 'alert line', threshold: true, value: () => T.maxP99Ms },
      ],
    },
    {
      id: 'errors', title: 'Error rate', note: "this process's commands", fmt: pct, axisFmt: axisPct, from0: true,
      series: [
        { label: 'errors', color: 's8', value: (s) => s.client.errorRate * 100 },
        { label: 'alert line', threshold: true, value: () => T.maxErrorRate * 100 },
      ],
    },
    {
      id: 'clients', title: 'Connected clients', note: 'server', fmt: int, from0: true, integer: true,
      series: [
        { label: 'connected', color: 's1', value: (s) => s.clients.connected },
        { label: 'blocked', color: 's2', value: (s) => s.clients.blocked },
      ],
    },
    {
      id: 'keys', title: 'Keys per prefix', note: 'counted with SCAN (estimated past 100,000 keys)', fmt: int, from0: true, integer: true, wide: true,
      series: config.prefixes.map((prefix, i) => ({ label: prefix, color: `s${(i % 9) + 1}`, value: (s) => s.keyDistribution[prefix] })),
    },
  ]

  function colors() {
    const style = getComputedStyle(document.documentElement)
    const css = (name) => style.getPropertyValue(`--${name}`).trim()
    const out = { axis: css('axis'), grid: css('grid'), threshold: css('threshold'), fg: css('fg') }
    for (let i = 1; i <= 9; i++) out[`s${i}`] = css(`s${i}`)
    return out
  }

  /** uPlot's recipe for an axis as wide as its longest label. */
  function axisSize(u, values, axisIdx, cycleNum) {
    const axis = u.axes[axisIdx]
    if (cycleNum > 1) return axis._size
    let size = axis.ticks.size + axis.gap
    const longest = (values || []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), '')
    if (longest !== '') {
      u.ctx.font = axis.font[0]
      size += u.ctx.measureText(longest).width / devicePixelRatio
    }
    return Math.ceil(size) + 4
  }

  const decades = (u, splits) => splits.map((v) => (Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9 ? v : null))

  const chartHeight = () => (window.innerWidth < 600 ? 170 : 210)

  function makeChart(def, palette) {
    let figure = document.getElementById(`chart-${def.id}`)
    if (!figure) {
      figure = document.createElement('figure')
      figure.className = def.wide ? 'chart wide' : 'chart'
      figure.id = `chart-${def.id}`
      const caption = document.createElement('figcaption')
      caption.textContent = def.title
      const note = document.createElement('small')
      note.className = 'note'
      note.textContent = def.note
      caption.appendChild(note)
      const plot = document.createElement('div')
      plot.className = 'plot'
      figure.append(caption, plot)
      document.getElementById('charts').appendChild(figure)
    }
    const plot = figure.querySelector('.plot')
    plot.textContent = ''
    const font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
    const axis = { stroke: palette.axis, font, grid: { stroke: palette.grid, width: 1 }, ticks: { stroke: palette.grid, width: 1, size: 4 } }
    const options = {
      width: Math.max(200, plot.clientWidth),
      height: chartHeight(),
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        x: { time: true },
        y: def.log
          ? { distr: 3, range: (u, min, max) => (min > 0 && max > 0 ? [10 ** Math.floor(Math.log10(min)), 10 ** Math.ceil(Math.log10(max))] : [0.1, 1000]) }
          : {
              range: def.range
                ? (u, min, max) => [def.range[0], def.grow && max > def.range[1] ? max * 1.05 : def.range[1]]
                : (u, min, max) => [def.from0 ? 0 : min, max > 0 ? max * 1.1 : 1],
            },
      },
      axes: [
        {
          ...axis,
          space: 70,
          size: 30, // one line of labels (uPlot's default leaves room for a date line)
          incrs: TIME_INCRS,
          values: (u, splits) => {
            const span = u.scales.x.max - u.scales.x.min
            return splits.map((t) => clock(t, span < 600))
          },
        },
        {
          ...axis,
          size: axisSize,
          incrs: def.integer ? INT_INCRS : undefined,
          values: (u, splits) => splits.map((v) => (v == null ? '' : (def.axisFmt || def.fmt)(v))),
          // A log axis is labelled, ticked and gridded at powers of ten only.
          ...(def.log ? { filter: decades, grid: { ...axis.grid, filter: decades }, ticks: { ...axis.ticks, filter: decades } } : {}),
        },
      ],
      series: [
        { value: (u, t) => (t == null ? '–' : clock(t, true)) },
        ...def.series.map((s) => ({
          label: s.label,
          stroke: s.threshold ? palette.threshold : palette[s.color],
          width: s.threshold ? 1.5 : 2,
          dash: s.threshold ? [6, 4] : undefined,
          points: s.threshold ? { show: false } : undefined,
          value: (u, v, _series, idx) => {
            const r = idx == null ? null : cachedRows[idx]
            return s.legend && r && r.s ? `${def.fmt(v)} · ${s.legend(r.s)}` : def.fmt(v)
          },
        })),
      ],
      hooks: {
        // What was drawn, for the browser test: finite points of the data series.
        draw: [(u) => {
          let points = 0
          def.series.forEach((s, i) => {
            if (s.threshold) return
            for (const v of u.data[i + 1]) if (v != null && Number.isFinite(v)) points++
          })
          figure.dataset.points = String(points)
          figure.dataset.draws = String(Number(figure.dataset.draws || 0) + 1)
        }],
      },
    }
    const chart = new uPlot(options, dataFor(def), plot)
    return { def, chart, plot }
  }

  // ── Data ──────────────────────────────────────────────────────────────────
  function row(sample) {
    return { t: Date.parse(sample.at) / 1000, s: sample }
  }

  /** The kept history before this page opened, then this page's own refreshes; the last hour. */
  function rows() {
    const firstLive = state.live.length ? state.live[0].t : Infinity
    const all = state.history.filter((r) => r.t < firstLive - 0.5).concat(state.live)
    if (all.length === 0) return []
    const from = all[all.length - 1].t - HOUR_S
    const out = []
    for (const r of all) {
      if (r.t < from) continue
      // A gap (the sampler stopped, the tab slept): break the line there.
      if (out.length && r.t - out[out.length - 1].t > GAP_S) out.push({ t: out[out.length - 1].t + 1, s: null })
      out.push(r)
    }
    return out
  }

  let cachedRows = []
  function dataFor(def) {
    const xs = cachedRows.map((r) => r.t)
    return [xs, ...def.series.map((s) => cachedRows.map((r) => (r.s === null ? null : s.value(r.s))))]
  }

  function drawAll() {
    cachedRows = rows()
    for (const c of state.charts) {
      c.chart.setData(dataFor(c.def))
      const last = c.chart.data[0].length - 1
      if (last >= 0) c.chart.setLegend({ idx: last })
    }
  }

  function build() {
    const palette = colors()
    for (const c of state.charts) c.chart.destroy()
    cachedRows = rows()
    state.charts = CHARTS.map((def) => makeChart(def, palette))
    drawAll()
  }

  // ── The text parts ────────────────────────────────────────────────────────
  function renderAlerts(alerts) {
    const section = document.getElementById('alerts')
    section.textContent = ''
    if (alerts.length === 0) {
      const p = document.createElement('p')
      p.className = 'none'
      p.textContent = 'No active alerts'
      section.appendChild(p)
      return
    }
    const list = document.createElement('ul')
    for (const alert of alerts) {
      const li = document.createElement('li')
      li.dataset.alert = alert.name
      const name = document.createElement('strong')
      name.textContent = alert.name
      li.append(name, document.createTextNode(alert.message.replace(/(\d) (%|ms)/g, `$1${NBSP}$2`)))
      list.appendChild(li)
    }
    section.appendChild(list)
  }

  function renderSummary(m) {
    const items = [
      ['Redis', `${m.server.version} ${m.server.mode}`],
      ['up', duration(m.server.uptimeSeconds)],
      ['memory', m.memory.maxmemoryBytes ? `${bytes(m.memory.usedBytes)} of ${bytes(m.memory.maxmemoryBytes)}` : `${bytes(m.memory.usedBytes)} (no maxmemory)`],
      ['policy', m.memory.evictionPolicy],
      ['keys', `${int(m.totalKeys)}${m.keyDistribution.exact ? '' : ' (estimated)'}`],
      ['clients', String(m.clients.connected)],
      ['connection', m.client.state],
      ['updated', clock(Date.parse(m.timestamp) / 1000, true)],
    ]
    const dl = document.getElementById('summary')
    dl.textContent = ''
    for (const [k, v] of items) {
      const div = document.createElement('div')
      const dt = document.createElement('dt')
      dt.textContent = k
      const dd = document.createElement('dd')
      dd.textContent = v
      div.append(dt, dd)
      dl.appendChild(div)
    }
  }

  function showStatus(text) {
    const status = document.getElementById('status')
    status.hidden = text === null
    status.textContent = text || ''
  }

  // ── Refresh ───────────────────────────────────────────────────────────────
  async function refresh() {
    if (state.inFlight) return
    state.inFlight = true
    try {
      const response = await fetch(ownUrl({ format: 'json' }), { headers: { accept: 'application/json' }, cache: 'no-store' })
      const body = await response.json().catch(() => ({}))
      if (Array.isArray(body.history)) state.history = body.history.map(row)
      if (!response.ok) {
        document.body.dataset.state = 'error'
        showStatus(response.status === 401 || response.status === 403
          ? `Not authorized (${response.status}): open the dashboard again with valid credentials.`
          : `${body.error || `HTTP ${response.status}`}${body.detail ? `: ${body.detail}` : ''} — retrying every ${refreshS} s`)
      } else {
        state.latest = body.metrics
        state.live.push(row(body.sample))
        if (state.live.length > LIVE_MAX) state.live.splice(0, state.live.length - LIVE_MAX)
        renderSummary(body.metrics)
        renderAlerts(body.metrics.alerts)
        showStatus(null)
        document.body.dataset.state = 'ok'
        state.refreshes++
        document.body.dataset.refreshes = String(state.refreshes)
      }
      drawAll()
    } catch (error) {
      document.body.dataset.state = 'error'
      showStatus(`Could not refresh: ${error.message} — retrying every ${refreshS} s`)
    } finally {
      state.inFlight = false
      schedule()
    }
  }

  function schedule() {
    clearTimeout(state.timer)
    // A hidden tab does not poll; it refreshes as soon as it is shown again.
    if (document.hidden) return
    state.timer = setTimeout(refresh, config.refreshMs)
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && !state.inFlight) refresh()
  })

  function start() {
    const footer = document.getElementById('footer')
    footer.textContent = `History: one sample every ${stepS} s for the last hour, kept in the server process while a dashboard is open; ` +
      `this page adds a point every ${refreshS} s. Dashed lines are the alert thresholds. Charts: uPlot.`
    build()
    let width = 0
    new ResizeObserver(() => {
      const now = document.getElementById('charts').clientWidth
      if (now === width) return
      width = now
      for (const c of state.charts) c.chart.setSize({ width: Math.max(200, c.plot.clientWidth), height: chartHeight() })
    }).observe(document.getElementById('charts'))
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', build)
    refresh()
  }

  Promise.all([
    load('link', { rel: 'stylesheet', href: ownUrl({ asset: 'uplot.css' }) }),
    load('script', { src: ownUrl({ asset: 'uplot.js' }) }),
  ]).then(start, (error) => {
    document.body.dataset.state = 'error'
    showStatus(error.message)
  })
})()
