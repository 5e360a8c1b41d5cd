// One Lambda function's page: the CodeMirror editor over the code form's textareas, Invoke without leaving the page,
// the live log (polled every second), the monitoring charts (Chart.js), and the AWS CLI command beside the form that
// adds a schedule, which follows what the learner types.
//
// CodeMirror and Chart.js are npm packages bundled by esbuild into static/build/ when `npm ci` runs (package.json's
// postinstall): their ES modules import each other by bare names, which a browser resolves only through an import
// map, and an inline import map is an inline script to the Content-Security-Policy. They are imported dynamically so
// the rest of the page keeps working if the build is missing: the code is then edited in the plain textarea.

const page = document.getElementById("function-page");
const readOnly = page.dataset.readOnly === "true";
const LOG_LINES_KEPT = 1000;
const LOG_POLL_MS = 1000;

function vendor(path) {
  return import(new URL(`../build/${path}`, import.meta.url).href).catch(function (error) {
    console.warn(`Sandcloud: ${path} did not load (run npm ci to build static/build/)`, error);
    return null;
  });
}

// --- the code editor --------------------------------------------------------------------------------------------

const codeForm = document.getElementById("code-form");
const dirtyBadge = document.getElementById("code-dirty");
let dirty = false;

function markDirty() {
  if (dirty || readOnly) return;
  dirty = true;
  dirtyBadge.hidden = false;
}

async function editorsStart() {
  const sources = Array.from(document.querySelectorAll(".sc-code-source"));
  if (!sources.length) return;
  const [cm, state, view, commands, lang, language] = await Promise.all([
    vendor("codemirror.js"), vendor("@codemirror/state.js"), vendor("@codemirror/view.js"),
    vendor("@codemirror/commands.js"), vendor("@codemirror/lang-python.js"), vendor("@codemirror/language.js"),
  ]);
  if (!cm || !state || !view || !commands || !lang || !language) return;
  // CodeMirror's own colours, but the two that fall short of WCAG's 4.5:1 on white made darker (as in editor.js);
  // basicSetup's highlighting is only a fallback, so this one wins.
  const DARKER = { "#e40": "#c03a00", "#f00": "#d00000" };
  const colours = language.HighlightStyle.define(language.defaultHighlightStyle.specs.map(function (spec) {
    return Object.assign({}, spec, spec.color in DARKER ? { color: DARKER[spec.color] } : {});
  }));
  for (const source of sources) {
    const locked = source.readOnly;
    const name = source.dataset.filename;
    // The editor fills a box of a minimum height (app.css): a long file scrolls inside instead of growing the card.
    const box = document.createElement("div");
    box.className = "sc-editor";
    const mount = document.createElement("div");
    mount.className = "sc-editor-fill";
    box.append(mount);
    source.after(box);
    const editor = new cm.EditorView({
      parent: mount,
      doc: source.value,
      extensions: [
        cm.basicSetup,
        language.syntaxHighlighting(colours),
        name.endsWith(".py") ? lang.python() : [],
        state.EditorState.tabSize.of(4),
        state.EditorState.readOnly.of(locked),
        cm.EditorView.editable.of(!locked),
        // Tab is left to the browser (moving focus on), so a keyboard user is never trapped in the editor.
        view.keymap.of([
          { key: "Mod-s", preventDefault: true, run: function () { save(); return true; } },
          { key: "Mod-]", run: commands.indentMore },
          { key: "Mod-[", run: commands.indentLess },
        ]),
        cm.EditorView.contentAttributes.of({ "aria-label": `Code of ${name}` }),
        cm.EditorView.updateListener.of(function (update) {
          if (!update.docChanged) return;
          source.value = update.state.doc.toString();
          markDirty();
        }),
      ],
    });
    source.hidden = true;
    source.classList.add("d-none");
    // Bootstrap's tabs show a hidden pane's editor with stale measurements; measure again when it appears.
    const pane = source.closest(".tab-pane");
    if (pane && pane.id) {
      const tab = document.querySelector(`[data-bs-target="#${pane.id}"]`);
      if (tab) tab.addEventListener("shown.bs.tab", function () { editor.requestMeasure(); });
    }
  }
  page.dataset.editor = "ready";
}

function save() {
  if (!codeForm || readOnly || !document.getElementById("code-save")) return;
  codeForm.requestSubmit();
}

if (codeForm) {
  codeForm.addEventListener("input", markDirty);
  codeForm.addEventListener("submit", function () {
    dirty = false;
  });
}
window.addEventListener("beforeunload", function (event) {
  if (dirty) event.preventDefault();
});

// --- invoking ---------------------------------------------------------------------------------------------------

const invokeForm = document.getElementById("invoke-form");
const invokeButton = document.getElementById("invoke-button");

function show(id, text) {
  document.getElementById(id).textContent = text;
}

function invokeShow(result) {
  const status = document.getElementById("invoke-status");
  status.className = "badge " + (result.function_error ? "text-bg-danger" : "text-bg-success");
  status.textContent = (result.function_error ? `Error (${result.function_error})` : "Succeeded") +
    ` · ${result.status_code}`;
  show("invoke-request", `Request ${result.request_id}`);
  show("invoke-payload", result.payload);
  show("invoke-report", result.report);
  show("invoke-log", result.log_tail);
  document.getElementById("invoke-result").hidden = false;
}

async function invoke(event) {
  event.preventDefault();
  if (invokeButton.disabled) return;
  // Disabled in this tick, so forms.js (listening on the document, after this form) leaves the button alone.
  invokeButton.disabled = true;
  const label = invokeButton.innerHTML;
  invokeButton.innerHTML = '<span class="spinner-border spinner-border-sm me-1" aria-hidden="true"></span>Invoking…';
  const error = document.getElementById("invoke-error");
  error.hidden = true;
  const progress = document.getElementById("invoke-progress");
  const started = performance.now();
  const tick = setInterval(function () {
    const seconds = (performance.now() - started) / 1000;
    progress.textContent = seconds < 1 ? "" : `Waiting for the function… ${seconds.toFixed(1)} s` +
      (seconds >= 1.5 ? " (a cold start: Lambda is starting an execution environment)" : "");
  }, 100);
  try {
    const response = await fetch(invokeForm.action, {
      method: "POST", body: new FormData(invokeForm), headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    let answer = null;
    try {
      answer = await response.json();
    } catch (parseError) {
      answer = null;
    }
    if (!response.ok || !answer) {
      error.textContent = (answer && answer.message) ||
        `The invocation could not be sent (HTTP ${response.status}). Reload the page and try again.`;
      error.hidden = false;
    } else {
      invokeShow(answer);
      if (!logSocketOpen) logPoll(true);
    }
  } catch (networkError) {
    error.textContent = "The site could not be reached. Check your connection and press Invoke again.";
    error.hidden = false;
  } finally {
    clearInterval(tick);
    progress.textContent = "";
    invokeButton.disabled = false;
    invokeButton.innerHTML = label;
    document.body.dispatchEvent(new CustomEvent("function-invoked"));
  }
}

if (invokeForm && invokeButton) invokeForm.addEventListener("submit", invoke);

// --- the live log -----------------------------------------------------------------------------------------------

const log = document.getElementById("function-log");
const logCount = document.getElementById("log-count");
const logLive = document.getElementById("log-live");
let lastId = null;
let lineCount = 0;
let polling = null;
let pollTimer = null;
let logSocketOpen = false;

function logClass(message) {
  if (message.startsWith("REPORT ")) return "sc-log-report";
  if (/^(START|END|INIT_START|INIT_REPORT) /.test(message)) return "sc-log-meta";
  if (/Traceback|\[ERROR\]|Task timed out|Runtime\.\w+Error/.test(message)) return "sc-log-error";
  return "";
}

function logAppend(events) {
  if (!events.length) return;
  const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const placeholder = log.querySelector(".sc-log-placeholder");
  if (placeholder) placeholder.remove();
  const fragment = document.createDocumentFragment();
  for (const event of events) {
    const line = document.createElement("div");
    line.className = "sc-log-line " + logClass(event.message);
    const time = document.createElement("span");
    time.className = "sc-log-time";
    time.textContent = new Date(event.timestamp).toISOString().slice(11, 23) + " ";
    time.title = event.stream;
    line.append(time, event.message.replace(/\n$/, ""));
    fragment.append(line);
  }
  log.append(fragment);
  lineCount += events.length;
  while (log.childElementCount > LOG_LINES_KEPT) log.firstElementChild.remove();
  const shown = log.childElementCount;
  logCount.textContent = `${shown.toLocaleString()} line${shown === 1 ? "" : "s"}` +
    (lineCount > shown ? ` (the last ${LOG_LINES_KEPT.toLocaleString()})` : "");
  if (nearBottom) log.scrollTop = log.scrollHeight;
}

async function logPoll(soon) {
  if (soon) {
    clearTimeout(pollTimer);
  }
  if (polling) return polling;
  polling = (async function () {
    try {
      if (document.visibilityState === "visible") {
        const url = new URL(page.dataset.logsUrl, window.location.href);
        if (lastId !== null) url.searchParams.set("after", lastId);
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (response.ok) {
          const answer = await response.json();
          if (answer.events.length) lastId = answer.events[answer.events.length - 1].id;
          if (lastId === null) lastId = 0;
          logAppend(answer.events);
          logLive.dataset.live = "on";
        } else {
          logLive.dataset.live = "off";
        }
      }
    } catch (error) {
      logLive.dataset.live = "off";
    } finally {
      polling = null;
      clearTimeout(pollTimer);
      pollTimer = setTimeout(logPoll, LOG_POLL_MS);
    }
  })();
  return polling;
}

// --- monitoring charts ------------------------------------------------------------------------------------------

let chartModule = null;
const charts = [];

async function chartsDraw() {
  const panel = document.getElementById("monitoring-panel");
  if (!panel) return;
  chartModule = chartModule || await vendor("chart.js/auto.js");
  if (!chartModule) return;
  const Chart = chartModule.Chart;
  while (charts.length) charts.pop().destroy();
  const data = JSON.parse(panel.dataset.chart);
  const common = { responsive: true, maintainAspectRatio: false, animation: false };
  charts.push(new Chart(document.getElementById("counts-chart"), {
    type: "bar",
    data: {
      labels: Object.keys(data.counts),
      datasets: [{ data: Object.values(data.counts), backgroundColor: ["#0d6efd", "#dc3545", "#fd7e14", "#6f42c1"] }],
    },
    options: { ...common, plugins: { legend: { display: false } },
               scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  }));
  const labels = data.durations.map(function (row) { return row.at; });
  const flat = function (value) { return value === null ? [] : labels.map(function () { return value; }); };
  charts.push(new Chart(document.getElementById("duration-chart"), {
    type: "line",
    data: {
      labels: labels,
      datasets: [
        { label: "Duration (ms)", data: data.durations.map(function (row) { return row.ms; }), borderColor: "#0d6efd",
          backgroundColor: data.durations.map(function (row) {
            return row.status === "Success" ? (row.init_ms === null ? "#0d6efd" : "#6f42c1") : "#dc3545";
          }),
          pointRadius: 4, tension: 0.2 },
        { label: `p50 ${data.p50 ?? "–"} ms`, data: flat(data.p50), borderColor: "#198754", borderDash: [6, 4],
          pointRadius: 0, borderWidth: 1.5 },
        { label: `p95 ${data.p95 ?? "–"} ms`, data: flat(data.p95), borderColor: "#fd7e14", borderDash: [2, 3],
          pointRadius: 0, borderWidth: 1.5 },
      ],
    },
    options: { ...common, plugins: { legend: { labels: { boxWidth: 12 } },
                                     tooltip: { callbacks: { afterLabel: function (item) {
                                       const row = data.durations[item.dataIndex];
                                       return item.datasetIndex === 0 && row && row.init_ms !== null
                                         ? `cold start, init ${row.init_ms} ms` : "";
                                     } } } },
               scales: { y: { beginAtZero: true, title: { display: true, text: "ms" } },
                         x: { ticks: { maxTicksLimit: 8 } } } },
  }));
}

document.body.addEventListener("htmx:afterSettle", function (event) {
  if (event.detail.target && event.detail.target.id === "monitoring") chartsDraw();
});

// The live log comes over a WebSocket (the server pushes new lines as they are stored); if the socket cannot be
// had or closes, the page polls the same lines over HTTP instead.
function logFollow() {
  const path = new URL(page.dataset.logsUrl, window.location.href).pathname;
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  let socket;
  try {
    socket = new WebSocket(`${scheme}//${window.location.host}/ws${path}`);
  } catch (error) {
    logPoll();
    return;
  }
  socket.addEventListener("open", function () {
    logSocketOpen = true;
    clearTimeout(pollTimer);
    logLive.dataset.live = "on";
  });
  socket.addEventListener("message", function (event) {
    const answer = JSON.parse(event.data);
    if (answer.type !== "logs") return;
    if (answer.events.length) lastId = answer.events[answer.events.length - 1].id;
    if (lastId === null) lastId = 0;
    logAppend(answer.events);
  });
  socket.addEventListener("close", function () {
    logSocketOpen = false;
    logPoll();
  });
}

// --- the schedule form's AWS CLI equivalent ---------------------------------------------------------------------

// As Python's shlex.quote, which writes the command the server renders (console.cli_schedule_create).
function shellQuoted(value) {
  if (value === "") return "''";
  return /^[A-Za-z0-9_@%+=:,.\/-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\"'\"'")}'`;
}

const scheduleForm = document.getElementById("schedule-form");
const scheduleCli = document.getElementById("schedule-cli");

function scheduleCliUpdate() {
  const data = scheduleCli.dataset;
  const name = scheduleForm.elements.name.value.trim() || data.exampleName;
  const expression = scheduleForm.elements.expression.value.trim() || data.exampleExpression;
  const input = scheduleForm.elements.target_input.value.trim();
  const target = { Arn: data.targetArn, RoleArn: data.roleArn };
  if (input) target.Input = input;
  scheduleCli.textContent = `aws scheduler create-schedule --name ${shellQuoted(name)} \\\n` +
    `  --schedule-expression ${shellQuoted(expression)} \\\n` +
    "  --flexible-time-window Mode=OFF \\\n" +
    `  --target ${shellQuoted(JSON.stringify(target))}`;
}

if (scheduleForm && scheduleCli) scheduleForm.addEventListener("input", scheduleCliUpdate);

editorsStart();
chartsDraw();
logFollow();
