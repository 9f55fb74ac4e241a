// streamfleet's console: one page, no build step, every asset served by the API (/ui).
// It is a client of the native API like any other (Authorization: Bearer <login token or API
// key>). Text from the farm is only ever set as text (never parsed as HTML). The restream form
// is made from the API's own OpenAPI document, so it has every field and its allowed values.
"use strict";

const CREDENTIAL = "streamfleet.credential";
const POLL_MS = 2000;
const SPARK_POINTS = 30;
const view = document.getElementById("view");
let stopPage = () => {};  // what the page shown now must stop (timers, streams, players)
let openapi = null;
const history = new Map();  // restream id -> its last bitrates, for the sparklines

// -- DOM ------------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function show(...nodes) {
  view.replaceChildren(...nodes);
}

function banner(message, kind = "error") {
  const box = document.getElementById("banner");
  box.textContent = message || "";
  box.className = kind === "info" ? "info" : "";
  box.hidden = !message;
}

function stateBadge(state) {
  return h("span", { class: `state ${state}`, "data-testid": "state" }, state);
}

function kbps(value) {
  return typeof value === "number" ? `${Math.round(value)} kbit/s` : "—";
}

function sparkline(points) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${SPARK_POINTS - 1} 20`);
  svg.setAttribute("preserveAspectRatio", "none");
  const top = Math.max(1, ...points);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  const step = (SPARK_POINTS - 1) / Math.max(1, points.length - 1);  // spread over the width
  line.setAttribute("points", points.map(
    (v, i) => `${(i * step).toFixed(1)},${(20 - (v / top) * 18).toFixed(1)}`).join(" "));
  svg.append(line);
  return svg;
}

// -- the API --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const detail = (body && body.error) || {};
    super(detail.message || `HTTP ${status}`);
    this.status = status;
    this.problems = detail.problems || [];
  }
}

async function api(method, path, body, headers = {}) {
  const credential = sessionStorage.getItem(CREDENTIAL);
  const response = await fetch(path, {
    method,
    headers: {
      ...(credential ? { Authorization: `Bearer ${credential}` } : {}),
      ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
      ...headers,
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (response.status === 401 && path !== "/api/auth/login") {
    logOut("Your session has ended: log in again.");
    throw new ApiError(401, parsed);
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return { body: parsed, headers: response.headers };
}

async function get(path) {
  return (await api("GET", path)).body;
}

// Server-Sent Events over fetch (EventSource cannot send an Authorization header). A
// reconnect resumes after the last event seen (Last-Event-ID): none is lost between streams.
function follow(path, onEvent) {
  const controller = new AbortController();
  let last = null;
  (async () => {
    while (!controller.signal.aborted) {
      try {
        const response = await fetch(path, {
          headers: { Accept: "text/event-stream",
                     Authorization: `Bearer ${sessionStorage.getItem(CREDENTIAL)}`,
                     ...(last ? { "Last-Event-ID": last } : {}) },
          signal: controller.signal,
        });
        if (response.status === 401) { logOut("Your session has ended: log in again."); return; }
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          banner(`The event stream: ${(body.error && body.error.message) || response.status}`);
          return;
        }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, end).split("\n");
            buffer = buffer.slice(end + 2);
            const id = frame.find((l) => l.startsWith("id: "));
            const data = frame.filter((l) => l.startsWith("data: "));
            if (id) last = id.slice(4);
            if (data.length) onEvent(JSON.parse(data.map((l) => l.slice(6)).join("\n")));
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));  // then again, from `last`
    }
  })();
  return () => controller.abort();
}

function every(ms, work) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    try { await work(); } catch (error) { if (!(error instanceof ApiError)) console.error(error); }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}

async function act(work, done) {
  banner("");
  try {
    await work();
    if (done) await done();
  } catch (error) {
    banner(error.message + (error.problems && error.problems.length
      ? "\n" + error.problems.map((p) => `${p.field}: ${p.message}`).join("\n") : ""));
  }
}

// -- logging in -----------------------------------------------------------------------------

function logOut(message) {
  sessionStorage.removeItem(CREDENTIAL);
  banner(message || "", "info");
  location.hash = "#/login";
}

function loginPage() {
  const email = h("input", { type: "email", name: "email", autocomplete: "username",
                             "data-testid": "login-email", value: "admin@streamfleet.local" });
  const password = h("input", { type: "password", name: "password",
                                autocomplete: "current-password", "data-testid": "login-password" });
  const key = h("input", { type: "password", name: "key", placeholder: "sf_…",
                           "data-testid": "login-key" });
  const submit = async (event) => {
    event.preventDefault();
    await act(async () => {
      if (key.value.trim()) {
        sessionStorage.setItem(CREDENTIAL, key.value.trim());
        await get("/v1/restreams?limit=1");  // refused (401) if the key is not one
      } else {
        const { body } = await api("POST", "/api/auth/login",
                                   { email: email.value, password: password.value });
        sessionStorage.setItem(CREDENTIAL, body.token);
      }
      location.hash = "#/restreams";
    });
  };
  show(
    h("h1", {}, "Log in"),
    h("form", { class: "login", onsubmit: submit },
      h("label", {}, "E-mail"), email,
      h("label", {}, "Password"), password,
      h("div", { class: "or" }, "or an API key"),
      key,
      h("p", {}, h("button", { class: "primary", type: "submit", "data-testid": "login-submit" },
                   "Log in"))),
  );
}

// -- restreams ------------------------------------------------------------------------------

async function restreamsPage() {
  const states = (await schemaOf("RestreamState")).enum;
  const stateFilter = h("select", { "data-testid": "filter-state" },
    h("option", { value: "" }, "every state"), states.map((s) => h("option", { value: s }, s)));
  const search = h("input", { type: "search", placeholder: "name contains…",
                              "data-testid": "filter-name" });
  const body = h("tbody");
  const table = h("table", { "data-testid": "restreams" },
    h("thead", {}, h("tr", {}, ["Name", "State", "Node", "Bitrate", "", "Last error", ""].map(
      (title) => h("th", {}, title)))),
    body);
  show(
    h("h1", {}, "Restreams"),
    h("div", { class: "toolbar" }, stateFilter, search, h("span", { class: "grow" }),
      h("a", { class: "button primary", href: "#/new", "data-testid": "new-restream" },
        "New restream")),
    table,
  );
  const refresh = async () => {
    const filters = {};
    if (stateFilter.value) filters.state = stateFilter.value;
    if (search.value.trim()) filters.name = search.value.trim();
    const [items, live] = await Promise.all([everyRestream(filters), get("/v1/live")]);
    const page = { items };
    const stats = new Map(live.map((s) => [s.restream_id, s.live]));
    for (const item of page.items) {
      const points = history.get(item.id) || [];
      const now = stats.get(item.id);
      points.push(now && typeof now.bitrate_kbps === "number" ? now.bitrate_kbps : 0);
      history.set(item.id, points.slice(-SPARK_POINTS));
    }
    body.replaceChildren(...page.items.map((item) => restreamRow(item, stats.get(item.id), refresh)));
    if (!page.items.length) {
      body.append(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No restreams.")));
    }
  };
  stateFilter.addEventListener("change", refresh);
  search.addEventListener("input", refresh);
  stopPage = every(POLL_MS, refresh);
}

// Every restream the list gives with `filters`, page after page (a page holds at most 1000).
async function everyRestream(filters) {
  const items = [];
  for (;;) {
    const query = new URLSearchParams({ ...filters, limit: "1000", offset: String(items.length) });
    const page = await get(`/v1/restreams?${query}`);
    items.push(...page.items);
    if (!page.items.length || items.length >= page.total) return items;
  }
}

function restreamRow(item, live, refresh) {
  const running = item.active;
  const call = (what) => () => act(() => api("POST", `/v1/restreams/${item.id}/${what}`), refresh);
  return h("tr", { "data-testid": "restream-row", dataset: { id: item.id, name: item.name } },
    h("td", {}, h("a", { href: `#/restreams/${item.id}` }, item.name)),
    h("td", {}, stateBadge(item.state)),
    h("td", {}, item.node || "—"),
    h("td", { class: "num", "data-testid": "bitrate" }, kbps(live && live.bitrate_kbps)),
    h("td", {}, sparkline(history.get(item.id) || [])),
    h("td", { class: "muted" }, item.last_error || ""),
    h("td", {},
      running
        ? h("button", { onclick: call("stop"), "data-testid": "stop" }, "Stop")
        : h("button", { onclick: call("start"), "data-testid": "start" }, "Start"),
      " ",
      h("button", { onclick: call("restart"), "data-testid": "restart" }, "Restart"),
      " ",
      h("button", {
        class: "danger", "data-testid": "remove",
        onclick: () => confirm(`Remove ${item.name}?`)
          && act(() => api("DELETE", `/v1/restreams/${item.id}`), refresh),
      }, "Remove")),
  );
}

async function restreamPage(id) {
  const { body: item } = await api("GET", `/v1/restreams/${id}`);
  const cards = h("div", { class: "cards" });
  const outputs = h("tbody");
  const events = h("tbody");
  const player = h("div", {}, h("p", { class: "muted" }, "No HLS or DASH output running."));
  const heading = h("span", { "data-testid": "detail-state" }, stateBadge(item.state));
  show(
    h("h1", {}, item.name, " ", heading),
    h("div", { class: "toolbar" },
      h("button", { onclick: () => act(() => api("POST", `/v1/restreams/${id}/start`)) }, "Start"),
      h("button", { onclick: () => act(() => api("POST", `/v1/restreams/${id}/stop`)),
                    "data-testid": "detail-stop" }, "Stop"),
      h("button", { onclick: () => act(() => api("POST", `/v1/restreams/${id}/restart`)) },
        "Restart"),
      h("a", { class: "button", href: `#/restreams/${id}/edit`, "data-testid": "edit" }, "Edit")),
    cards,
    h("h2", {}, "Preview"), player,
    h("h2", {}, "Outputs"),
    h("table", {}, h("thead", {}, h("tr", {}, ["#", "Type", "Where", "Status"].map(
      (t) => h("th", {}, t)))), outputs),
    h("h2", {}, "Events"),
    h("table", { "data-testid": "events" },
      h("thead", {}, h("tr", {}, ["When", "Change", "Why", "Node"].map((t) => h("th", {}, t)))),
      events),
  );
  const eventRow = (e) => h("tr", {},
    h("td", { class: "num" }, new Date(e.at).toLocaleTimeString()),
    h("td", {}, e.to_state ? `${e.from_state || "—"} → ${e.to_state}` : (e.type || "")),
    h("td", {}, e.reason), h("td", {}, e.node || ""));
  const shown = new Set();  // event ids on the page: the stream and the history may overlap
  const add = (e) => { if (!shown.has(e.id)) { shown.add(e.id); events.prepend(eventRow(e)); } };
  const unfollow = follow(  // opened before the history is read: nothing falls between
    "/v1/events?types=restream.state,restream.input_switch,restream.note",
    (e) => { if (e.subject.id === id) add(e); });
  for (const e of await get(`/v1/restreams/${id}/events?limit=50`)) add(e);
  let playing = null;
  const refresh = async () => {
    const [current, stats] = await Promise.all([get(`/v1/restreams/${id}`),
                                                get(`/v1/restreams/${id}/stats`)]);
    const live = stats.live || {};
    const card = (label, value, testid) => h("div", { class: "card" },
      h("div", { class: "label" }, label), h("div", { class: "value", "data-testid": testid }, value));
    cards.replaceChildren(
      card("State", stateBadge(current.state), "card-state"),
      card("Node", current.node || "—", "card-node"),
      card("Bitrate", kbps(live.bitrate_kbps), "card-bitrate"),
      card("Frames a second", live.fps != null ? live.fps : "—"),
      card("On air", live.on_air || "—"),
      card("Last error", current.last_error || "none", "card-error"),
    );
    const statuses = new Map((live.outputs || []).map((o) => [o.index, o]));
    outputs.replaceChildren(...current.outputs.map((o, index) => {
      const status = statuses.get(index);
      return h("tr", {},
        h("td", {}, index + 1), h("td", {}, o.output_type),
        h("td", {}, stats.playback[o.id] || o.output_stream_url || ""),
        h("td", { "data-testid": "output-status" },
          status ? `${status.status}${status.error ? `: ${status.error}` : ""}`
                 : (current.state === "running" ? "ok" : "—")));
    }));
    heading.replaceChildren(stateBadge(current.state));
    const url = Object.values(stats.playback)[0];
    if (url !== (playing && playing.url)) {
      if (playing) playing.stop();
      playing = url ? { url, ...preview(url) } : null;
      player.replaceChildren(playing ? playing.element
        : h("p", { class: "muted" }, "No HLS or DASH output running."));
    }
  };
  const stops = [
    every(POLL_MS, refresh),
    unfollow,
    () => { if (playing) playing.stop(); },
  ];
  stopPage = () => stops.forEach((stop) => stop());
}

function preview(url) {
  // The bundled player (shaka: HLS and DASH). A playlist not written yet (the restream just
  // started) is tried again every 2 s; `stop` ends it when the page goes.
  const video = h("video", { controls: true, muted: true, autoplay: true, playsinline: true,
                             "data-testid": "player" });
  video.muted = true;
  const note = h("p", { class: "muted" }, url);
  let stopped = false;
  let player = null;
  if (window.shaka && shaka.Player.isBrowserSupported()) {
    player = new shaka.Player();
    const load = async () => {
      try {
        await player.attach(video);
        await player.load(url);
        note.textContent = url;
      } catch (error) {
        if (stopped) return;
        note.textContent = `${url}: not playable yet (${error.code || error}); trying again`;
        setTimeout(load, 2000);
      }
    };
    load();
  } else {
    video.src = url;  // a browser that plays HLS itself
  }
  return {
    element: h("div", {}, video, note),
    stop: () => { stopped = true; if (player) player.destroy(); },
  };
}

// -- the restream form, from the OpenAPI document --------------------------------------------

async function schemaOf(name) {
  if (!openapi) openapi = await (await fetch("/openapi.json")).json();
  return openapi.components.schemas[name];
}

function resolve(schema) {
  // A field's own schema: `anyOf: [X, null]` is an optional X; a $ref is its component.
  let nullable = false;
  if (schema.anyOf) {
    const others = schema.anyOf.filter((s) => s.type !== "null");
    nullable = others.length < schema.anyOf.length;
    schema = others.length === 1 ? { ...others[0], description: schema.description,
                                     default: schema.default } : { type: "json" };
  }
  if (schema.$ref) {
    const target = openapi.components.schemas[schema.$ref.split("/").pop()];
    schema = { ...target, description: schema.description || target.description,
               default: schema.default };
  }
  return { schema, nullable };
}

function fieldFor(path, name, raw, value, required) {
  const { schema } = resolve(raw);
  const id = `f-${path}`;
  let input;
  if (schema.enum) {
    input = h("select", { id },
      required ? null : h("option", { value: "" }, "—"),
      schema.enum.map((v) => h("option", { value: v, selected: v === value }, v)));
  } else if (schema.type === "boolean") {
    input = h("select", { id },
      h("option", { value: "" }, "—"),
      h("option", { value: "true", selected: value === true }, "yes"),
      h("option", { value: "false", selected: value === false }, "no"));
  } else if (schema.type === "integer" || schema.type === "number") {
    input = h("input", { id, type: "number", step: schema.type === "integer" ? 1 : "any",
                         min: schema.minimum ?? schema.exclusiveMinimum,
                         max: schema.maximum ?? schema.exclusiveMaximum,
                         value: value ?? "" });
  } else if (schema.type === "string") {
    input = h("input", { id, type: "text", value: value ?? "", maxlength: schema.maxLength });
  } else {
    input = h("textarea", { id, rows: 2 }, value != null ? JSON.stringify(value) : "");
  }
  input.dataset.path = path;
  input.dataset.kind = schema.enum ? "enum" : (schema.type || "json");
  const help = schema.description || raw.description;
  return h("div", { class: "field" },
    h("label", { for: id }, name + (required ? " *" : "")), input,
    help ? h("div", { class: "help" }, help) : null,
    h("div", { class: "problem", "data-problem": path }));
}

async function fieldset(legend, schemaName, path, value) {
  const schema = await schemaOf(schemaName);
  const required = new Set(schema.required || []);
  return h("fieldset", { "data-section": path },
    h("legend", {}, legend),
    Object.entries(schema.properties).filter(([name]) => name !== "id").map(([name, raw]) =>
      fieldFor(`${path}.${name}`, name, raw, value ? value[name] : undefined, required.has(name))));
}

function collect(form) {
  const body = {};
  for (const input of form.querySelectorAll("[data-path]")) {
    const raw = input.value.trim();
    if (raw === "") continue;
    let value = raw;
    if (input.dataset.kind === "integer" || input.dataset.kind === "number") value = Number(raw);
    else if (input.dataset.kind === "boolean") value = raw === "true";
    else if (input.dataset.kind === "json") value = JSON.parse(raw);
    const parts = input.dataset.path.split(".");
    let at = body;
    parts.slice(0, -1).forEach((part, i) => {
      const next = /^\d+$/.test(parts[i + 1]) ? [] : {};
      at = at[part] = at[part] || next;
    });
    at[parts[parts.length - 1]] = value;
  }
  if (body.outputs) body.outputs = body.outputs.filter(Boolean);
  return body;
}

async function formPage(id) {
  let item = null;
  let etag = null;
  if (id) {
    const read = await api("GET", `/v1/restreams/${id}`);
    item = read.body;
    etag = read.headers.get("ETag");
  }
  const outputs = h("div");
  let count = 0;
  const addOutput = async (value) => {
    const index = count++;
    const section = await fieldset(`Output ${index + 1}`, "OutputSpec", `outputs.${index}`, value);
    section.append(h("button", { type: "button", class: "danger",
                                 onclick: () => section.remove() }, "Remove this output"));
    outputs.append(section);
  };
  const name = fieldFor("name", "name", { type: "string", maxLength: 200 }, item && item.name, true);
  const form = h("form", { class: "spec", "data-testid": "restream-form" },
    h("fieldset", {}, h("legend", {}, "Restream"), name),
    await fieldset("Input", "InputSpec", "input", item && item.input),
    await fieldset("Transcoding (leave empty to copy)", "TranscodingSpec", "transcoding",
                   item && item.transcoding),
    outputs,
    h("p", {}, h("button", { type: "button", onclick: () => addOutput() }, "Add an output")),
    h("p", {}, h("button", { class: "primary", type: "submit", "data-testid": "save" },
                 id ? "Save" : "Create")));
  for (const output of (item ? item.outputs : [null])) await addOutput(output);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    form.querySelectorAll("[data-problem]").forEach((p) => { p.textContent = ""; });
    form.querySelectorAll(".invalid").forEach((i) => i.classList.remove("invalid"));
    let body;
    try {
      body = collect(form);
    } catch (error) {
      banner(`A JSON field does not parse: ${error.message}`);
      return;
    }
    if (body.transcoding && !Object.keys(body.transcoding).length) delete body.transcoding;
    banner("");
    try {
      const saved = id
        ? await api("PATCH", `/v1/restreams/${id}`, body, etag ? { "If-Match": etag } : {})
        : await api("POST", "/v1/restreams", body);
      location.hash = `#/restreams/${saved.body.id}`;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      banner(error.message);
      for (const problem of error.problems) {
        // The field named, or the one its message starts with ("input": "input_stream_url
        // scheme must be …"), or else its section.
        const named = [problem.field, `${problem.field}.${problem.message.split(" ")[0]}`]
          .find((f) => form.querySelector(`[data-problem="${CSS.escape(f)}"]`));
        if (named) {
          form.querySelector(`[data-problem="${CSS.escape(named)}"]`).textContent = problem.message;
          const input = form.querySelector(`[data-path="${CSS.escape(named)}"]`);
          if (input) input.classList.add("invalid");
        } else {
          const section = form.querySelector(`[data-section="${CSS.escape(problem.field)}"]`);
          if (section) section.append(h("div", { class: "problem" }, problem.message));
        }
      }
    }
  });
  show(h("h1", {}, id ? `Edit ${item.name}` : "New restream"), form);
}

// -- nodes ----------------------------------------------------------------------------------

function nodesPage() {
  const body = h("tbody");
  show(
    h("h1", {}, "Nodes"),
    h("table", { "data-testid": "nodes" },
      h("thead", {}, h("tr", {}, ["Name", "State", "Live", "Address", "CPU reserved / capacity",
                                  "U30 devices", "Runs", ""].map((t) => h("th", {}, t)))),
      body));
  const refresh = async () => {
    const nodes = await get("/v1/nodes");
    body.replaceChildren(...nodes.map((node) => {
      const cpu = (node.capacity && node.capacity.cpu_millicores) || {};
      const share = cpu.capacity ? Math.min(100, (100 * cpu.reserved) / cpu.capacity) : 0;
      const u30 = (node.capacity && node.capacity.u30) || {};
      const devices = Object.entries(u30).map(([device, engines]) =>
        `#${device}: ${Object.entries(engines).map(([e, v]) => `${e} ${v.free} free`).join(", ")}`);
      const toggle = node.state === "draining"
        ? h("button", { "data-testid": "undrain",
                        onclick: () => act(() => api("POST", `/v1/nodes/${node.name}/undrain`), refresh) },
            "Undrain")
        : h("button", { "data-testid": "drain",
                        onclick: () => act(() => api("POST", `/v1/nodes/${node.name}/drain`), refresh) },
            "Drain");
      return h("tr", { "data-testid": "node-row", dataset: { name: node.name } },
        h("td", {}, node.name), h("td", {}, stateBadge(node.state)),
        h("td", {}, node.live ? "yes" : "no"), h("td", {}, node.address || "—"),
        h("td", { class: "num" },
          h("meter", { min: 0, max: cpu.capacity || 1, value: cpu.reserved || 0,
                       title: `${share.toFixed(0)}% reserved` }),
          ` ${cpu.reserved ?? "—"} / ${cpu.capacity ?? "—"} m (${cpu.free ?? "—"} free)`),
        h("td", {}, devices.length ? devices.join("; ") : "none"),
        h("td", { class: "num" }, node.running), h("td", {}, toggle));
    }));
  };
  stopPage = every(POLL_MS * 1.5, refresh);
}

// -- projects and keys ----------------------------------------------------------------------

async function projectsPage() {
  const list = h("div");
  const newName = h("input", { placeholder: "project name", "data-testid": "project-name" });
  show(
    h("h1", {}, "Projects and keys"),
    h("div", { class: "toolbar" }, newName,
      h("button", { onclick: () => act(() => api("POST", "/v1/projects", { name: newName.value }),
                                       refresh) }, "Create project")),
    list);
  const refresh = async () => {
    const projects = await get("/v1/projects");
    const sections = [];
    for (const project of projects) {
      const keys = await get(`/v1/projects/${project.id}/keys`).catch(() => []);
      const keyName = h("input", { placeholder: "what the key is for" });
      const role = h("select", {}, ["operator", "viewer", "admin"].map((r) => h("option", {}, r)));
      const shown = h("div");
      sections.push(h("section", { "data-testid": "project", dataset: { id: project.id } },
        h("h2", {}, project.name, " ", h("span", { class: "muted" }, project.id)),
        h("table", {}, h("thead", {}, h("tr", {}, ["Key", "Role", "Created", "Last used", ""].map(
          (t) => h("th", {}, t)))),
          h("tbody", {}, keys.map((key) => h("tr", {},
            h("td", {}, `${key.name} (${key.prefix}…)`), h("td", {}, key.role),
            h("td", {}, new Date(key.created_at).toLocaleString()),
            h("td", {}, key.last_used_at ? new Date(key.last_used_at).toLocaleString() : "never"),
            h("td", {}, key.revoked_at ? "revoked" : h("button", {
              class: "danger",
              onclick: () => act(() => api("DELETE", `/v1/projects/${project.id}/keys/${key.id}`),
                                 refresh),
            }, "Revoke")))))),
        h("div", { class: "toolbar" }, keyName, role, h("button", {
          onclick: () => act(async () => {
            const { body } = await api("POST", `/v1/projects/${project.id}/keys`,
                                       { name: keyName.value, role: role.value });
            shown.replaceChildren(h("p", {}, "The key, shown this once:"),
                                  h("div", { class: "secret" }, body.key));
          }),
        }, "Create key")),
        shown));
    }
    list.replaceChildren(...sections);
  };
  await refresh();
}

// -- the farm's events ----------------------------------------------------------------------

function eventsPage() {
  const body = h("tbody");
  show(h("h1", {}, "Events"), h("p", { class: "muted" }, "From now on, as they come, newest first."),
    h("table", { "data-testid": "feed" },
      h("thead", {}, h("tr", {}, ["When", "Type", "Subject", "Change", "Why"].map(
        (t) => h("th", {}, t)))), body));
  const row = (e) => h("tr", {},
    h("td", { class: "num" }, new Date(e.at).toLocaleTimeString()), h("td", {}, e.type),
    h("td", {}, e.subject.kind === "restream"
      ? h("a", { href: `#/restreams/${e.subject.id}` }, e.subject.id) : e.subject.id),
    h("td", {}, e.to_state ? `${e.from_state || "—"} → ${e.to_state}` : ""),
    h("td", {}, e.reason));
  stopPage = follow("/v1/events", (e) => body.prepend(row(e)));
}

// -- routing --------------------------------------------------------------------------------

const ROUTES = [
  [/^#\/login$/, loginPage],
  [/^#\/restreams$/, restreamsPage],
  [/^#\/new$/, () => formPage(null)],
  [/^#\/restreams\/([0-9a-f]{24})$/, (m) => restreamPage(m[1])],
  [/^#\/restreams\/([0-9a-f]{24})\/edit$/, (m) => formPage(m[1])],
  [/^#\/nodes$/, nodesPage],
  [/^#\/projects$/, projectsPage],
  [/^#\/events$/, eventsPage],
];

async function route() {
  stopPage();
  stopPage = () => {};
  const signedIn = Boolean(sessionStorage.getItem(CREDENTIAL));
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("logout").hidden = !signedIn;
  if (!signedIn && location.hash !== "#/login") {
    location.hash = "#/login";
    return;
  }
  const hash = location.hash || "#/restreams";
  for (const [pattern, page] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      try {
        await page(match);
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 401)) banner(error.message);
      }
      return;
    }
  }
  location.hash = "#/restreams";
}

document.getElementById("logout").addEventListener("click", async () => {
  const credential = sessionStorage.getItem(CREDENTIAL);
  try {  // a login token is revoked (Callaba's logout); a key has nothing to end
    await api("POST", "/api/auth/logout", undefined, { "x-access-token": credential });
  } catch (error) { /* a key, or already ended */ }
  logOut("Logged out.");
});
window.addEventListener("hashchange", route);
route();
