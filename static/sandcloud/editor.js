// The editor beside the terminal: the sandbox's home folder as a tree and its files in CodeMirror 6 tabs, read and
// written in the running sandbox through sandbox/files (paths relative to the home folder; "" is the folder itself).
//
// CodeMirror is imported dynamically from static/build/ (see function.js for why): if the build is missing, the tree
// still works and opening a file says what is wrong. The page's other scripts talk to this one through DOM events:
// sandbox.js sends "sandcloud:terminal-enter" when a command line is entered (files may have changed) and fits the
// terminal on "sandcloud:layout-changed"; htmx swaps the lab's #step-panel, whose data-open-file names the step's file.

const MAX_UPLOAD_BYTES = 1024 * 1024;   // the server's cap too; checked here first to spare a pointless upload
const PROGRESS_DELAY_MS = 300;          // quicker answers show no spinner, so the panel does not flicker
const REFRESH_AFTER_ENTER_MS = 1500;    // long enough for most commands typed in the terminal to have finished
const FLASH_MS = 3000;
const SHOWN_KEY = "sandcloud.editor.shown";
// Each request runs a program in the sandbox, and the server refuses a fourth at once (sandbox/files/services.py):
// two at a time leaves room for another page open on the same sandbox.
const MAX_REQUESTS_AT_ONCE = 2;

function vendor(path) {
  const url = new URL(`../build/${path}`, import.meta.url);
  return import(url.href).catch(function (error) {
    // A module whose fetch failed stays failed for this page under its URL: one more try under another URL covers a
    // request lost on a busy server.
    console.warn(`Sandcloud: ${path} did not load; trying once more`, error);
    url.searchParams.set("retry", "1");
    return import(url.href);
  }).catch(function (error) {
    console.warn(`Sandcloud: ${path} did not load (run npm ci to build static/build/)`, error);
    return null;
  });
}

// --- CodeMirror and the languages it highlights -----------------------------------------------------------------

let codemirror = null;

function codemirrorLoad() {
  codemirror = codemirror || Promise.all([
    vendor("codemirror.js"), vendor("@codemirror/state.js"), vendor("@codemirror/view.js"),
    vendor("@codemirror/commands.js"), vendor("@codemirror/language.js"),
  ]).then(function ([cm, state, view, commands, language]) {
    if (!cm || !state || !view || !commands || !language) return null;
    // CodeMirror's own colours, but the two that fall short of WCAG's 4.5:1 on white made darker.
    const DARKER = { "#e40": "#c03a00", "#f00": "#d00000" };
    const colours = language.HighlightStyle.define(language.defaultHighlightStyle.specs.map(function (spec) {
      return Object.assign({}, spec, spec.color in DARKER ? { color: DARKER[spec.color] } : {});
    }));
    return { cm, state, view, commands, language, colours };
  });
  return codemirror;
}

const LANGUAGE_LOADERS = {
  python: () => vendor("@codemirror/lang-python.js").then((module) => module && module.python()),
  json: () => vendor("@codemirror/lang-json.js").then((module) => module && module.json()),
  yaml: () => vendor("@codemirror/lang-yaml.js").then((module) => module && module.yaml()),
  shell: () => legacyMode("shell.js", "shell"),
  dockerfile: () => legacyMode("dockerfile.js", "dockerFile"),
};
const languages = new Map();

async function legacyMode(file, name) {
  const [language, mode] = await Promise.all([
    vendor("@codemirror/language.js"), vendor(`@codemirror/legacy-modes/mode/${file}`),
  ]);
  return language && mode ? language.StreamLanguage.define(mode[name]) : null;
}

const SHELL_NAMES = new Set([".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile"]);
const SHEBANG_SHELL = /^#!\s*\/(usr\/)?bin\/(env\s+)?(ba)?sh\b/;

// Which language a file is, from its name (and, for a name without an extension, its first line).
function languageName(path, firstLine) {
  const name = baseName(path);
  const lower = name.toLowerCase();
  if (lower.startsWith("dockerfile") || lower.endsWith(".dockerfile")) return "dockerfile";
  if (lower.endsWith(".py")) return "python";
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".yml") || lower.endsWith(".yaml")) return "yaml";
  if (lower.endsWith(".sh") || lower.endsWith(".bash") || SHELL_NAMES.has(lower)) return "shell";
  if (!name.includes(".") && SHEBANG_SHELL.test(firstLine || "")) return "shell";
  return null;
}

function languageLoad(name) {
  if (!name) return Promise.resolve(null);
  if (!languages.has(name)) languages.set(name, LANGUAGE_LOADERS[name]());
  return languages.get(name);
}

// --- paths -------------------------------------------------------------------------------------------------------

function baseName(path) { return path.slice(path.lastIndexOf("/") + 1); }
function parentOf(path) { return path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ""; }
function joinPath(dir, name) { return dir ? `${dir}/${name}` : name; }
function homePath(path) { return path ? `~/${path}` : "~"; }
function within(path, dir) { return dir === "" || path === dir || path.startsWith(`${dir}/`); }
function ancestors(path) {
  const found = [""];
  path.split("/").slice(0, -1).reduce(function (dir, part) { found.push(joinPath(dir, part)); return joinPath(dir, part); }, "");
  return found;
}

// What a learner typed as a name: relative to `dir`, or to the home folder when it starts with ~/.
function pathFromInput(dir, typed) {
  const text = typed.trim().replace(/^(\.\/)+/, "");
  if (text === "~") return "";
  if (text.startsWith("~/")) return text.slice(2).replace(/\/+$/, "");
  return joinPath(dir, text.replace(/\/+$/, ""));
}

// A path from the page (a lab step's file), written with or without ~/.
function pathFromPage(value) {
  return (value || "").trim().replace(/^~\//, "").replace(/^\/+/, "");
}

// --- talking to sandbox/files ------------------------------------------------------------------------------------

class FilesError extends Error {
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data || {};
  }
}

function statusText(status) {
  if (status === 413) return "That is too large for the editor.";
  if (status >= 500) return `Sandcloud could not do that (error ${status}). Try again in a moment.`;
  return `Sandcloud refused that (error ${status}).`;
}

function filesClient(baseUrl, csrfToken) {
  let busy = 0;
  const queue = [];

  async function inTurn(work) {
    if (busy >= MAX_REQUESTS_AT_ONCE) await new Promise((resolve) => queue.push(resolve));
    else busy += 1;
    try {
      return await work();
    } finally {
      const next = queue.shift();
      if (next) next();  // the slot passes straight on, so nobody overtakes the queue
      else busy -= 1;
    }
  }

  function url(action, query) {
    const address = new URL(baseUrl + action, window.location.href);
    Object.entries(query || {}).forEach(function ([key, value]) { address.searchParams.set(key, value); });
    return address;
  }

  async function send(method, action, { query, json, form } = {}) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken;
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (form) {
      init.body = form;
    }
    try {
      return await fetch(url(action, query), init);
    } catch (error) {
      throw new FilesError("Sandcloud could not be reached: check your connection, then try again.", 0);
    }
  }

  async function failure(response) {
    if (response.redirected && new URL(response.url).pathname.startsWith("/accounts/login")) {
      return new FilesError("You are signed out. Reload the page and sign in again.", 401);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    const message = data && typeof data.error === "string" && data.error ? data.error : statusText(response.status);
    return new FilesError(message, response.status, data);
  }

  async function call(method, action, options) {
    return inTurn(async function () {
      const response = await send(method, action, options);
      if (!response.ok || response.redirected) throw await failure(response);
      try {
        return await response.json();
      } catch (error) {
        throw new FilesError("Sandcloud's answer could not be read. Try again.", response.status);
      }
    });
  }

  async function download(path) {
    return inTurn(async function () {
      const response = await send("GET", "download", { query: { path } });
      if (!response.ok || response.redirected) throw await failure(response);
      return response.blob();
    });
  }

  return { call, download };
}

// --- the editor --------------------------------------------------------------------------------------------------

function editorStart(root) {
  const page = document.getElementById("sandbox-page");
  const readOnly = root.dataset.readOnly === "true";
  const files = filesClient(root.dataset.filesUrl, root.querySelector("input[name=csrfmiddlewaretoken]").value);
  const tree = document.getElementById("editor-tree");
  const treeNote = document.getElementById("editor-tree-note");
  const tabList = document.getElementById("editor-tabs");
  const panels = document.getElementById("editor-panels");
  const emptyNote = document.getElementById("editor-empty");
  const fileActions = document.getElementById("editor-file-actions");
  const messageBox = document.getElementById("editor-message");
  const progressBox = document.getElementById("editor-progress");
  const uploadInput = document.getElementById("editor-upload");
  const toggle = document.getElementById("editor-toggle");
  const workbench = root.closest(".sc-workbench");

  let started = false;       // the tree has been loaded once the sandbox runs
  let editorShown = true;
  let stepFile = pathFromPage(root.dataset.openFile);

  // --- progress, messages and questions ------------------------------------------------------------------------

  const pending = new Set();
  let flashText = "";
  let flashTimer = null;

  function progressRender() {
    const shown = Array.from(pending).filter((entry) => entry.visible);
    progressBox.replaceChildren();
    if (shown.length) {
      const spinner = document.createElement("span");
      spinner.className = "spinner-border spinner-border-sm me-1";
      spinner.setAttribute("aria-hidden", "true");
      progressBox.append(spinner, shown[shown.length - 1].label);
    } else if (flashText) {
      const tick = document.createElement("i");
      tick.className = "bi bi-check2 me-1";
      tick.setAttribute("aria-hidden", "true");
      progressBox.append(tick, flashText);
    }
  }

  // Runs `work` (a promise), showing `label` beside a spinner if it takes longer than a moment.
  async function inProgress(label, work) {
    const entry = { label, visible: false };
    pending.add(entry);
    const timer = setTimeout(function () { entry.visible = true; progressRender(); }, PROGRESS_DELAY_MS);
    try {
      return await work;
    } finally {
      clearTimeout(timer);
      pending.delete(entry);
      progressRender();
    }
  }

  function flash(text) {
    clearTimeout(flashTimer);
    flashText = text;
    progressRender();
    flashTimer = setTimeout(function () { flashText = ""; progressRender(); }, FLASH_MS);
  }

  // One message at a time near the editor, read out by screen readers; the server's sentence is shown as it is.
  let messagesShown = 0;

  function messageShow(text, { level = "danger", actions = [] } = {}) {
    messagesShown += 1;
    const box = document.createElement("div");
    box.className = `alert alert-${level} sc-editor-alert`;
    const words = document.createElement("span");
    words.className = "sc-editor-alert-text";
    words.textContent = text;
    box.append(words);
    actions.forEach(function ([label, action, style]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = `btn btn-sm ${style || "btn-outline-dark"}`;
      button.textContent = label;
      button.addEventListener("click", function () { messageClear(); action(); });
      box.append(button);
    });
    const close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("aria-label", "Dismiss the message");
    close.addEventListener("click", messageClear);
    box.append(close);
    messageBox.replaceChildren(box);
  }

  // Clears the message. With `since` (messageMark() taken when an operation began), only a message shown before then:
  // one about something the learner did meanwhile (a second upload refused while the first was finishing) stays.
  function messageClear(since = null) {
    if (since !== null && since !== messagesShown) return;
    messageBox.replaceChildren();
  }

  function messageMark() {
    return messagesShown;
  }

  function report(error) {
    if (error instanceof FilesError) {
      messageShow(error.message);
    } else {
      console.error(error);
      messageShow("The editor ran into a problem. Reload the page; unsaved changes in open files are kept until you do.");
    }
  }

  const dialog = document.getElementById("editor-dialog");
  const dialogInput = document.getElementById("editor-dialog-input");
  const dialogOk = document.getElementById("editor-dialog-ok");
  const dialogCancel = dialog.querySelector("[data-dialog-cancel]");
  dialogCancel.addEventListener("click", function () { dialog.close("cancel"); });

  // Asks in a modal dialog: with `label`, for a name (resolves to it, or null); without, for a yes (true or null).
  function ask({ title, text = "", label = null, value = "", ok, danger = false, selectTo = null }) {
    return new Promise(function (resolve) {
      document.getElementById("editor-dialog-title").textContent = title;
      const paragraph = document.getElementById("editor-dialog-text");
      paragraph.textContent = text;
      paragraph.hidden = !text;
      document.getElementById("editor-dialog-field").hidden = label === null;
      document.getElementById("editor-dialog-label").textContent = label || "";
      dialogInput.required = label !== null;
      dialogInput.value = value;
      dialogOk.textContent = ok;
      dialogOk.className = `btn btn-sm ${danger ? "btn-danger" : "btn-primary"}`;
      dialog.returnValue = "";
      dialog.addEventListener("close", function () {
        const yes = dialog.returnValue === "ok";
        resolve(yes ? (label === null ? true : dialogInput.value.trim()) : null);
      }, { once: true });
      dialog.showModal();
      if (label !== null) {
        dialogInput.focus();
        dialogInput.setSelectionRange(0, selectTo === null ? value.length : selectTo);
      } else {
        dialogCancel.focus();  // a slip of Enter must not delete anything
      }
    });
  }

  // --- the sandbox's state -------------------------------------------------------------------------------------

  function sandboxRunning() {
    return !page || page.dataset.state === "running";
  }

  function stateChanged() {
    if (sandboxRunning()) {
      if (started) return;
      started = true;
      treeNote.hidden = true;
      tree.hidden = false;
      codemirrorLoad();  // fetched now, so the first file opens without waiting for it
      treeRefresh();
      stepFileOpen();
      return;
    }
    const ended = ["stopped", "failed", "expired"].includes(page.dataset.state);
    treeNote.textContent = ended ? "This sandbox has stopped, and its files are gone."
      : "Your files appear here once the sandbox runs.";
    treeNote.hidden = false;
    if (ended) {
      started = false;
      folders.clear();
      tree.hidden = true;
    }
  }

  // --- the tree ------------------------------------------------------------------------------------------------

  const folders = new Map();           // a folder's path -> { entries, truncated }, as last listed
  const expanded = new Set([""]);
  let selected = { path: "", kind: "dir" };

  function folderShown(path) {
    return ancestors(path).every((dir) => expanded.has(dir)) && expanded.has(path);
  }

  async function folderList(path) {
    const data = await files.call("GET", "list", { query: { path } });
    folders.set(path, { entries: data.entries, truncated: data.truncated });
  }

  // Lists again every folder the tree shows open: one request each, so a refresh costs little.
  async function treeRefresh({ quiet = false } = {}) {
    if (!started) return;
    const paths = Array.from(expanded).filter(folderShown);
    const results = await inProgress(quiet ? "Refreshing…" : "Loading files…",
      Promise.allSettled(paths.map(folderList)));
    let failed = null;
    results.forEach(function (result, index) {
      if (result.status === "fulfilled") return;
      if (result.reason.status === 404 && paths[index] !== "") {
        // The folder went away (the terminal deleted or moved it): close it rather than complain.
        expanded.delete(paths[index]);
        folders.delete(paths[index]);
      } else {
        failed = failed || result.reason;
      }
    });
    treeRender();
    if (failed) report(failed);
    tabsCompareWithDisk();
  }

  function entryFor(path) {
    const folder = folders.get(parentOf(path));
    return folder && folder.entries.find((entry) => entry.name === baseName(path));
  }

  const KIND_ICONS = { file: "bi-file-earmark", link: "bi-link-45deg", other: "bi-file-earmark-x" };

  function describe(entry) {
    if (entry.kind === "dir") return "folder";
    const size = entry.size < 1024 ? `${entry.size} bytes` : `${(entry.size / 1024).toFixed(1)} KB`;
    const when = entry.mtime ? `, changed ${new Date(entry.mtime * 1000).toLocaleString()}` : "";
    return (entry.kind === "link" ? "link, " : "") + size + when;
  }

  // The tree is one flat list whose items carry their depth (aria-level), as ARIA allows: nested lists would make
  // each folder's name, computed from its content, include everything inside it.
  function treeItem(entry, path, level, position, count) {
    const item = document.createElement("li");
    item.setAttribute("role", "treeitem");
    item.setAttribute("aria-level", String(level));
    item.setAttribute("aria-posinset", String(position));
    item.setAttribute("aria-setsize", String(count));
    item.setAttribute("aria-selected", "false");
    item.tabIndex = -1;
    item.dataset.path = path;
    item.dataset.kind = entry.kind;
    const row = document.createElement("div");
    row.className = "sc-tree-row";
    row.style.paddingLeft = `${0.3 + (level - 1) * 0.85}rem`;
    row.title = path ? `${homePath(path)} (${describe(entry)})` : "Your home folder";
    const open = entry.kind === "dir" && expanded.has(path);
    const chevron = document.createElement("i");
    chevron.className = `sc-tree-chevron bi ${entry.kind === "dir" ? (open ? "bi-chevron-down" : "bi-chevron-right") : ""}`;
    const icon = document.createElement("i");
    icon.className = `bi ${entry.kind === "dir" ? (open ? "bi-folder2-open" : "bi-folder") : KIND_ICONS[entry.kind] || KIND_ICONS.file}`;
    chevron.setAttribute("aria-hidden", "true");
    icon.setAttribute("aria-hidden", "true");
    const name = document.createElement("span");
    name.className = "sc-tree-name";
    name.textContent = entry.name;
    row.append(chevron, icon, name);
    if (path === "") {
      const words = document.createElement("span");
      words.className = "visually-hidden";
      words.textContent = " (your home folder)";
      row.append(words);
    }
    item.append(row);
    if (entry.kind === "dir") item.setAttribute("aria-expanded", String(open));
    return item;
  }

  function treeNoteItem(text, level) {
    const item = treeItem({ name: text, kind: "note" }, "", level, 1, 1);
    item.removeAttribute("data-path");
    item.removeAttribute("aria-selected");
    item.removeAttribute("tabindex");
    item.setAttribute("aria-disabled", "true");
    item.classList.add("sc-tree-note");
    item.querySelector(".sc-tree-row").removeAttribute("title");
    item.querySelector(".sc-tree-row .bi:not(.sc-tree-chevron)").className = "";
    return item;
  }

  // The items of a folder the tree shows open, and of the open folders inside it, in the order they are shown.
  function treeItemsIn(path, level) {
    const folder = folders.get(path);
    if (!folder) return [treeNoteItem("loading…", level)];
    const items = [];
    folder.entries.forEach(function (entry, index) {
      const child = joinPath(path, entry.name);
      items.push(treeItem(entry, child, level, index + 1, folder.entries.length));
      if (entry.kind === "dir" && expanded.has(child)) items.push(...treeItemsIn(child, level + 1));
    });
    if (!folder.entries.length) items.push(treeNoteItem("empty", level));
    if (folder.truncated) items.push(treeNoteItem("… more not shown (use the terminal)", level));
    return items;
  }

  function treeItemAt(path) {
    return Array.from(tree.querySelectorAll("[role=treeitem][data-path]")).find((item) => item.dataset.path === path);
  }

  let focusPath = "";   // the item the tree's one tab stop is on

  function treeRender() {
    const hadFocus = tree.contains(document.activeElement);
    tree.replaceChildren(treeItem({ name: "~", kind: "dir" }, "", 1, 1, 1), ...treeItemsIn("", 2));
    if (!treeItemAt(selected.path)) selected = { path: "", kind: "dir" };
    tree.querySelectorAll("[role=treeitem][data-path]").forEach((item) => item.setAttribute("aria-selected",
      String(item.dataset.path === selected.path)));
    const current = treeItemAt(focusPath) || treeItemAt(selected.path) || tree.firstElementChild;
    focusPath = current.dataset.path;
    current.tabIndex = 0;
    if (hadFocus) current.focus({ preventScroll: true });
    toolbarUpdate();
  }

  function treeSelect(item, { focus = true } = {}) {
    if (!item || !item.hasAttribute("data-path")) return;
    tree.querySelectorAll("[role=treeitem][data-path]").forEach(function (other) {
      other.tabIndex = -1;
      other.setAttribute("aria-selected", "false");
    });
    item.tabIndex = 0;
    item.setAttribute("aria-selected", "true");
    selected = { path: item.dataset.path, kind: item.dataset.kind };
    focusPath = selected.path;
    if (focus) item.focus();
    item.querySelector(".sc-tree-row").scrollIntoView({ block: "nearest" });
    toolbarUpdate();
  }

  // Opens and closes folders, opens files.
  async function treeActivate(item) {
    const path = item.dataset.path;
    if (item.dataset.kind !== "dir") {
      await fileOpen(path, { focus: true });
      return;
    }
    if (expanded.has(path) && path !== "") {
      expanded.delete(path);
      treeRender();
      return;
    }
    await folderOpen(path);
  }

  async function folderOpen(path) {
    expanded.add(path);
    treeRender();
    try {
      await inProgress(`Listing ${homePath(path)}…`, folderList(path));
    } catch (error) {
      expanded.delete(path);
      report(error);
    }
    treeRender();
  }

  // Shows a path in the tree: its folders opened and listed (its own folder listed afresh), and the item selected.
  async function treeReveal(path) {
    const stale = ancestors(path).filter((dir) => !expanded.has(dir) || !folders.has(dir) || dir === parentOf(path));
    stale.forEach((dir) => expanded.add(dir));
    await Promise.allSettled(stale.map(folderList));
    treeRender();
    const item = treeItemAt(path);
    if (item) treeSelect(item, { focus: false });
  }

  tree.addEventListener("click", function (event) {
    const item = event.target.closest("[role=treeitem]");
    if (!item || !item.hasAttribute("data-path")) return;
    treeSelect(item);
    treeActivate(item);
  });

  tree.addEventListener("keydown", function (event) {
    const item = event.target.closest("[role=treeitem]");
    if (!item || event.altKey || event.ctrlKey || event.metaKey) return;
    const items = Array.from(tree.querySelectorAll("[role=treeitem][data-path]"));
    const index = items.indexOf(item);
    const isDir = item.dataset.kind === "dir";
    const open = item.getAttribute("aria-expanded") === "true";
    const move = (target) => { if (target) treeSelect(target); };
    switch (event.key) {
      case "ArrowDown": move(items[index + 1]); break;
      case "ArrowUp": move(items[index - 1]); break;
      case "Home": move(items[0]); break;
      case "End": move(items[items.length - 1]); break;
      case "ArrowRight":
        if (isDir && !open) folderOpen(item.dataset.path);
        else if (isDir && items[index + 1] && parentOf(items[index + 1].dataset.path) === item.dataset.path &&
                 items[index + 1].dataset.path !== "") move(items[index + 1]);
        break;
      case "ArrowLeft":
        if (isDir && open && item.dataset.path !== "") {
          expanded.delete(item.dataset.path);
          treeRender();
        } else if (item.dataset.path !== "") {
          move(treeItemAt(parentOf(item.dataset.path)));
        }
        break;
      case "Enter":
      case " ":
        if (item.hasAttribute("data-path")) treeActivate(item);
        break;
      case "F2": if (!readOnly) entryRename(); break;
      case "Delete": if (!readOnly) entryDelete(); break;
      default: return;
    }
    event.preventDefault();
  });

  function selectedFolder() {
    return selected.kind === "dir" ? selected.path : parentOf(selected.path);
  }

  function toolbarUpdate() {
    root.querySelectorAll("[data-action=rename], [data-action=delete]").forEach(function (button) {
      button.disabled = selected.path === "";
    });
  }

  // --- tabs: one per open file ---------------------------------------------------------------------------------

  const tabs = [];
  let activeTab = null;
  let tabCount = 0;

  function tabFor(path) {
    return tabs.find((tab) => tab.path === path);
  }

  // Opens a file in a tab (or shows its tab). createIfMissing: a file that does not exist yet opens empty, and
  // saving creates it (a lab step's answer file).
  async function fileOpen(path, { focus = true, createIfMissing = false } = {}) {
    const tab = tabFor(path) || await inProgress(`Opening ${homePath(path)}…`, fileLoad(path, createIfMissing));
    if (tab) tabActivate(tab, { focus });
    return tab;
  }

  async function fileLoad(path, createIfMissing) {
    let data;
    try {
      data = await files.call("GET", "read", { query: { path } });
    } catch (error) {
      if (!(createIfMissing && error.status === 404)) {
        report(error);
        return null;
      }
      data = { path, content: "", mtime: null, editable: true, missing: true };
    }
    return tabFor(path) || tabCreate(data);  // another open of the same file may have finished first
  }

  async function tabCreate(data) {
    const id = `editor-file-${++tabCount}`;
    const tab = {
      path: data.path, mtime: data.mtime, missing: Boolean(data.missing), editable: data.editable !== false,
      view: null, saved: null, dirty: false, saving: false,
    };
    tab.button = document.createElement("button");
    tab.button.type = "button";
    tab.button.className = "sc-file-tab";
    tab.button.id = `${id}-tab`;
    tab.button.setAttribute("role", "tab");
    tab.button.setAttribute("aria-controls", `${id}-panel`);
    tab.button.setAttribute("aria-selected", "false");
    tab.button.tabIndex = -1;
    tab.button.innerHTML = '<span class="sc-file-tab-name"></span><span class="sc-file-tab-dirty" aria-hidden="true" hidden>●</span>' +
      '<span class="visually-hidden sc-file-tab-state"></span><i class="bi bi-x sc-file-tab-close" aria-hidden="true"></i>';
    tab.panel = document.createElement("div");
    tab.panel.className = "sc-file-panel";
    tab.panel.id = `${id}-panel`;
    tab.panel.setAttribute("role", "tabpanel");
    tab.panel.setAttribute("aria-labelledby", tab.button.id);
    tab.panel.hidden = true;
    tab.note = document.createElement("p");
    tab.note.className = "sc-file-note";
    tab.note.hidden = !tab.missing;
    tab.note.textContent = `${homePath(data.path)} does not exist yet: saving creates it.`;
    tab.panel.append(tab.note);
    tabs.push(tab);
    tabList.append(tab.button);
    panels.append(tab.panel);
    tabLabel(tab);
    if (tab.editable) {
      await editorCreate(tab, data.content);
    } else {
      blockedShow(tab, data.reason);
    }
    return tab;
  }

  function blockedShow(tab, reason) {
    const box = document.createElement("div");
    box.className = "sc-file-blocked";
    box.innerHTML = '<i class="bi bi-file-earmark-lock fs-2" aria-hidden="true"></i><p class="mb-2 sc-file-reason"></p>' +
      '<button type="button" class="btn btn-sm btn-outline-primary"><i class="bi bi-download me-1" aria-hidden="true"></i>Download</button>';
    box.querySelector(".sc-file-reason").textContent = reason || "This file cannot be edited here: download it instead.";
    box.querySelector("button").addEventListener("click", function () { fileDownload(tab.path); });
    tab.panel.append(box);
  }

  async function editorCreate(tab, content) {
    const modules = await codemirrorLoad();
    if (!modules) {
      tab.editable = false;
      blockedShow(tab, "The editor did not load: reload the page. You can still download the file.");
      return;
    }
    const { cm, state } = modules;
    tab.languageSlot = new state.Compartment();
    tab.labelSlot = new state.Compartment();
    tab.view = new cm.EditorView({
      parent: tab.panel,
      doc: content,
      extensions: [
        cm.basicSetup,
        modules.language.syntaxHighlighting(modules.colours),
        // Tab indents; Escape then Tab leaves the editor (CodeMirror's own escape hatch), as in the terminal.
        modules.view.keymap.of([modules.commands.indentWithTab]),
        state.EditorState.readOnly.of(readOnly),
        cm.EditorView.editable.of(!readOnly),
        tab.labelSlot.of(contentLabel(tab, cm)),
        tab.languageSlot.of([]),
        cm.EditorView.updateListener.of(function (update) { if (update.docChanged) tabDirtyUpdate(tab); }),
      ],
    });
    tab.saved = tab.view.state.doc;
    languageApply(tab);
  }

  function contentLabel(tab, cm) {
    // Read-only content is not editable, so it would not take the focus: a tab stop lets a keyboard reach and scroll it.
    return cm.EditorView.contentAttributes.of(Object.assign({ "aria-label": `Contents of ${homePath(tab.path)}` },
      readOnly ? { tabindex: "0" } : {}));
  }

  async function languageApply(tab) {
    if (!tab.view) return;
    const name = languageName(tab.path, tab.view.state.doc.line(1).text);
    const extension = await languageLoad(name);
    if (tab.view) tab.view.dispatch({ effects: tab.languageSlot.reconfigure(extension || []) });
  }

  function tabLabel(tab) {
    tab.button.querySelector(".sc-file-tab-name").textContent = baseName(tab.path);
    tab.button.title = `${homePath(tab.path)}${tab.dirty ? " (unsaved changes)" : ""}. Delete closes this tab.`;
    tab.button.querySelector(".sc-file-tab-dirty").hidden = !tab.dirty;
    tab.button.querySelector(".sc-file-tab-state").textContent = tab.dirty ? " (unsaved changes)" : "";
    tab.button.classList.toggle("sc-file-tab-dirty-on", tab.dirty);
  }

  function tabDirtyUpdate(tab) {
    const dirty = Boolean(tab.view) && !tab.view.state.doc.eq(tab.saved);
    if (dirty === tab.dirty) return;
    tab.dirty = dirty;
    tabLabel(tab);
  }

  function tabActivate(tab, { focus = false } = {}) {
    activeTab = tab;
    tabs.forEach(function (other) {
      const active = other === tab;
      other.button.setAttribute("aria-selected", String(active));
      other.button.tabIndex = active ? 0 : -1;
      other.panel.hidden = !active;
    });
    emptyNote.hidden = true;
    fileActions.hidden = false;
    const save = fileActions.querySelector("[data-action=save]");
    if (save) save.hidden = !tab.editable;
    tab.button.scrollIntoView({ block: "nearest", inline: "nearest" });
    if (tab.view) tab.view.requestMeasure();
    if (focus) {
      if (tab.view) tab.view.focus();
      else tab.panel.querySelector("button").focus();
    }
  }

  async function tabClose(tab, { ask: confirmFirst = true } = {}) {
    if (confirmFirst && tab.dirty) {
      const yes = await ask({
        title: `Close ${baseName(tab.path)}?`, ok: "Close without saving", danger: true,
        text: `${homePath(tab.path)} has changes you have not saved. Closing it loses them.`,
      });
      if (!yes) return;
    }
    const index = tabs.indexOf(tab);
    if (index < 0) return;
    const hadFocus = tab.panel.contains(document.activeElement) || tab.button === document.activeElement;
    tabs.splice(index, 1);
    tab.button.remove();
    tab.panel.remove();
    if (tab.view) tab.view.destroy();
    tab.view = null;
    if (activeTab === tab) {
      activeTab = null;
      const next = tabs[Math.min(index, tabs.length - 1)];
      if (next) {
        tabActivate(next);
        if (hadFocus) next.button.focus();
      } else {
        emptyNote.hidden = false;
        fileActions.hidden = true;
        if (hadFocus) (treeItemAt(focusPath) || tree.firstElementChild || root).focus();
      }
    }
  }

  tabList.addEventListener("click", function (event) {
    const button = event.target.closest("[role=tab]");
    const tab = button && tabs.find((one) => one.button === button);
    if (!tab) return;
    if (event.target.closest(".sc-file-tab-close")) tabClose(tab);
    else tabActivate(tab, { focus: false });
  });

  tabList.addEventListener("auxclick", function (event) {  // a middle click closes a tab, as in browsers
    const tab = tabs.find((one) => one.button === event.target.closest("[role=tab]"));
    if (tab && event.button === 1) tabClose(tab);
  });

  tabList.addEventListener("keydown", function (event) {
    const index = tabs.findIndex((tab) => tab.button === event.target);
    if (index < 0) return;
    let target = null;
    if (event.key === "ArrowRight") target = tabs[(index + 1) % tabs.length];
    else if (event.key === "ArrowLeft") target = tabs[(index - 1 + tabs.length) % tabs.length];
    else if (event.key === "Home") target = tabs[0];
    else if (event.key === "End") target = tabs[tabs.length - 1];
    else if (event.key === "Delete") tabClose(tabs[index]);
    else return;
    event.preventDefault();
    if (target) {
      tabActivate(target);
      target.button.focus();
    }
  });

  window.addEventListener("beforeunload", function (event) {
    if (tabs.some((tab) => tab.dirty)) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // --- reading and writing files -------------------------------------------------------------------------------

  async function fileSave(tab, { force = false } = {}) {
    const mark = messageMark();
    if (readOnly || !tab || !tab.view || tab.saving) return;
    const doc = tab.view.state.doc;
    tab.saving = true;
    try {
      const data = await inProgress(`Saving ${baseName(tab.path)}…`, files.call("POST", "write", {
        json: { path: tab.path, content: doc.toString(), mtime: tab.mtime, force },
      }));
      const created = tab.missing;
      tab.mtime = data.mtime;
      tab.saved = doc;
      tab.missing = false;
      tab.note.hidden = true;
      tabDirtyUpdate(tab);
      messageClear(mark);
      flash(`Saved ${homePath(tab.path)}`);
      languageApply(tab);
      if (created || folders.has(parentOf(tab.path))) folderRefreshQuietly(parentOf(tab.path));
    } catch (error) {
      if (error.status === 409 && error.data.conflict && error.data.mtime === null) {
        // The file went away since it was opened: the next save creates it again.
        tab.mtime = null;
        messageShow(error.message, { level: "warning", actions: [["Save again", () => fileSave(tab)]] });
      } else if (error.status === 409 && error.data.conflict) {
        messageShow(error.message, {
          level: "warning",
          actions: [["Reload from disk", () => fileReload(tab)], ["Overwrite", () => fileSave(tab, { force: true })]],
        });
      } else {
        report(error);
      }
    } finally {
      tab.saving = false;
    }
  }

  // Replaces a tab's text with the file on disk (after a conflict, or when the terminal changed a file left unedited).
  async function fileReload(tab, { quiet = false } = {}) {
    try {
      const data = await inProgress(`Reloading ${baseName(tab.path)}…`,
        files.call("GET", "read", { query: { path: tab.path } }));
      if (!tab.view) return;
      if (data.editable === false) {
        messageShow(`${homePath(tab.path)}: ${data.reason}`);
        return;
      }
      const current = tab.view.state.doc.toString();
      if (current !== data.content) {
        tab.view.dispatch({
          changes: { from: 0, to: current.length, insert: data.content },
          selection: { anchor: Math.min(tab.view.state.selection.main.head, data.content.length) },
        });
      }
      tab.saved = tab.view.state.doc;
      tab.mtime = data.mtime;
      tab.missing = false;
      tab.note.hidden = true;
      tabDirtyUpdate(tab);
      if (!quiet) flash(`Reloaded ${homePath(tab.path)}`);
    } catch (error) {
      if (!quiet) report(error);
    }
  }

  // After a tree refresh: a file the terminal changed is reloaded in its tab when the learner has not edited it.
  function tabsCompareWithDisk() {
    tabs.forEach(function (tab) {
      const entry = entryFor(tab.path);
      if (!entry || !tab.view || tab.dirty || tab.saving) return;
      if (tab.missing || (tab.mtime !== null && entry.mtime !== tab.mtime)) fileReload(tab, { quiet: true });
    });
  }

  async function folderRefreshQuietly(path) {
    if (!folderShown(path)) return;
    try {
      await folderList(path);
    } catch (error) {
      return;  // the next refresh says what is wrong, if it still is
    }
    treeRender();
  }

  async function fileDownload(path) {
    try {
      const blob = await inProgress(`Downloading ${baseName(path)}…`, files.download(path));
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = baseName(path);
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
    } catch (error) {
      report(error);
    }
  }

  // --- new, rename, delete, upload -----------------------------------------------------------------------------

  async function entryCreate(kind) {
    const mark = messageMark();
    const dir = selectedFolder();
    const noun = kind === "dir" ? "folder" : "file";
    const typed = await ask({ title: `New ${noun}`, label: `Name of the new ${noun}, in ${homePath(dir)}`, ok: "Create" });
    if (!typed) return;
    const path = pathFromInput(dir, typed);
    try {
      const data = await inProgress(`Creating ${homePath(path)}…`, files.call("POST", "create", { json: { path, kind } }));
      messageClear(mark);
      await treeReveal(data.path || path);
      if (kind === "file") {
        const tab = tabFor(data.path || path) || await tabCreate({ path: data.path || path, content: "", mtime: data.mtime });
        tabActivate(tab, { focus: true });
      }
    } catch (error) {
      report(error);
    }
  }

  async function entryRename() {
    const mark = messageMark();
    const path = selected.path;
    if (!path) return;
    const name = baseName(path);
    const dot = name.lastIndexOf(".");
    const typed = await ask({
      title: `Rename ${homePath(path)}`, label: "New name", value: name, ok: "Rename",
      selectTo: dot > 0 && selected.kind !== "dir" ? dot : null,
    });
    if (!typed || typed === name) return;
    const to = pathFromInput(parentOf(path), typed);
    try {
      const data = await inProgress(`Renaming ${name}…`, files.call("POST", "rename", { json: { path, to } }));
      const renamed = data.path || to;
      messageClear(mark);
      tabs.filter((tab) => within(tab.path, path)).forEach(function (tab) {
        tab.path = renamed + tab.path.slice(path.length);
        tabLabel(tab);
        codemirrorLoad().then(function (modules) {
          if (tab.view && modules) tab.view.dispatch({ effects: tab.labelSlot.reconfigure(contentLabel(tab, modules.cm)) });
        });
        languageApply(tab);
      });
      Array.from(expanded).filter((dir) => dir && within(dir, path)).forEach(function (dir) {
        expanded.delete(dir);
        expanded.add(renamed + dir.slice(path.length));
      });
      Array.from(folders.keys()).filter((dir) => dir && within(dir, path)).forEach((dir) => folders.delete(dir));
      selected = { path: renamed, kind: selected.kind };
      focusPath = renamed;
      await treeRefresh();
      await treeReveal(renamed);
    } catch (error) {
      report(error);
    }
  }

  async function entryDelete() {
    const mark = messageMark();
    const { path, kind } = selected;
    if (!path) return;
    const yes = await ask({
      title: `Delete ${homePath(path)}?`, ok: "Delete", danger: true,
      text: kind === "dir" ? "The folder is deleted with everything in it. This cannot be undone."
        : "The file is deleted. This cannot be undone.",
    });
    if (!yes) return;
    try {
      await inProgress(`Deleting ${baseName(path)}…`, files.call("POST", "delete", { json: { path } }));
      messageClear(mark);
      tabs.filter((tab) => within(tab.path, path)).forEach((tab) => tabClose(tab, { ask: false }));
      Array.from(expanded).filter((dir) => dir && within(dir, path)).forEach((dir) => expanded.delete(dir));
      Array.from(folders.keys()).filter((dir) => dir && within(dir, path)).forEach((dir) => folders.delete(dir));
      selected = { path: parentOf(path), kind: "dir" };
      focusPath = selected.path;
      await treeRefresh();
      const item = treeItemAt(selected.path);
      if (item) treeSelect(item);
    } catch (error) {
      report(error);
    }
  }

  async function fileUpload(file) {
    const mark = messageMark();
    const dir = selectedFolder();
    const path = joinPath(dir, file.name);
    if (file.size > MAX_UPLOAD_BYTES) {
      messageShow(`${file.name} is larger than 1 MB, the most the editor uploads. Fetch it from inside the sandbox instead.`);
      return;
    }
    async function send(overwrite) {
      const form = new FormData();
      form.append("dir", dir);
      form.append("file", file);
      if (overwrite) form.append("overwrite", "1");
      return inProgress(`Uploading ${file.name}…`, files.call("POST", "upload", { form }));
    }
    try {
      let data;
      try {
        data = await send(false);
      } catch (error) {
        // The server marks "that file is already there" apart from every other 409 (e.g. a stopped sandbox).
        if (error.status !== 409 || !error.data.exists) throw error;
        const yes = await ask({
          title: `Replace ${homePath(path)}?`, text: `${error.message} Replace it with the file you chose?`,
          ok: "Replace", danger: true,
        });
        if (!yes) return;
        data = await send(true);
      }
      messageClear(mark);
      flash(`Uploaded ${homePath(data.path || path)}`);
      await treeReveal(data.path || path);
      const tab = tabFor(data.path || path);
      if (tab && !tab.dirty) fileReload(tab, { quiet: true });
    } catch (error) {
      report(error);
    }
  }

  // --- buttons and keys ----------------------------------------------------------------------------------------

  const ACTIONS = {
    "new-file": () => entryCreate("file"),
    "new-folder": () => entryCreate("dir"),
    upload: function () {
      uploadInput.value = "";
      uploadInput.click();
    },
    rename: entryRename,
    delete: entryDelete,
    refresh: () => treeRefresh(),
    save: () => fileSave(activeTab),
    download: () => activeTab && fileDownload(activeTab.path),
    close: () => activeTab && tabClose(activeTab),
  };

  root.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-action]");
    if (!button || !root.contains(button)) return;
    if (!started && button.dataset.action !== "close") {
      messageShow("The sandbox is not running: its files can be changed once it runs.");
      return;
    }
    ACTIONS[button.dataset.action]();
  });

  if (uploadInput) {
    uploadInput.addEventListener("change", function () {
      if (uploadInput.files.length) fileUpload(uploadInput.files[0]);
    });
  }

  // Ctrl-S (Cmd-S) anywhere in the editor saves the file shown, rather than the browser saving the page.
  root.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s") {
      event.preventDefault();
      if (!readOnly) fileSave(activeTab);
    }
  });

  // --- the lab step's file -------------------------------------------------------------------------------------

  async function stepFileOpen() {
    if (!stepFile || !started) return;
    const path = stepFile;
    await treeReveal(path);
    await fileOpen(path, { focus: false, createIfMissing: !readOnly });
  }

  document.body.addEventListener("htmx:afterSwap", function () {
    const panel = document.getElementById("step-panel");
    if (!panel || !panel.hasAttribute("data-open-file")) return;
    const path = pathFromPage(panel.dataset.openFile);
    if (path === stepFile) return;  // the same step redrawn (a check, a hint): leave the tabs as the learner has them
    stepFile = path;
    stepFileOpen();
  });

  // --- refreshing after the terminal ---------------------------------------------------------------------------

  let enterTimer = null;
  document.addEventListener("sandcloud:terminal-enter", function () {
    if (!editorShown || !started) return;
    clearTimeout(enterTimer);
    enterTimer = setTimeout(function () { treeRefresh({ quiet: true }); }, REFRESH_AFTER_ENTER_MS);
  });

  // --- showing and hiding the editor ---------------------------------------------------------------------------

  function editorShow(shown, { remember = false } = {}) {
    editorShown = shown;
    root.hidden = !shown;
    if (workbench) workbench.classList.toggle("sc-editor-off", !shown);
    if (toggle) toggle.setAttribute("aria-pressed", String(shown));
    if (remember) {
      try {
        window.localStorage.setItem(SHOWN_KEY, shown ? "shown" : "hidden");
      } catch (error) {
        // storage refused (private browsing): the choice lasts until the page is left
      }
    }
    document.dispatchEvent(new CustomEvent("sandcloud:layout-changed"));
    if (shown) {
      tabs.forEach((tab) => tab.view && tab.view.requestMeasure());
      if (started) treeRefresh({ quiet: true });
    }
  }

  let remembered = null;
  try {
    remembered = window.localStorage.getItem(SHOWN_KEY);
  } catch (error) {
    remembered = null;
  }
  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () { editorShow(!editorShown, { remember: true }); });
  }
  editorShow(remembered !== "hidden");

  // --- start ---------------------------------------------------------------------------------------------------

  treeRender();
  if (page) new MutationObserver(stateChanged).observe(page, { attributes: true, attributeFilter: ["data-state"] });
  stateChanged();
}

const editorRoot = document.getElementById("editor");
if (editorRoot) editorStart(editorRoot);
