// livepages uploads: files of <input type="file" data-lp-upload="name"> go to the
// server in chunks, resume after a dropped connection, and can be cancelled.
//
// The input's attributes (written by the `upload(name)` template helper) say what to
// do: data-lp-chunk (bytes per request), data-lp-csrf and data-lp-tab (kept current by
// Datastar from the page's _csrf and _tab signals). Progress is reported as an
// `lp-upload` event on the input, whose detail is {state, ids, loaded, total, percent,
// message}; the helper binds it to the page's signals. A click on an element with
// data-lp-cancel="name" cancels that input's uploads. No framework, no globals.

const endpoint = new URL("./_upload", import.meta.url).pathname;
const OFFSET = "Upload-Offset";
// A dropped connection is retried with growing pauses, for this long without progress.
const RETRY_FOR_MS = 120000;
const jobs = new WeakMap();

class Refused extends Error {}
class Cancelled extends Error {}

function headers(input, extra) {
  return {
    "X-CSRF-Token": input.dataset.lpCsrf || "",
    "X-LP-Tab": input.dataset.lpTab || "",
    ...extra,
  };
}

function report(input, job, detail) {
  Object.assign(job.detail, detail);
  const { loaded, total } = job.detail;
  job.detail.percent = total ? Math.floor((100 * loaded) / total) : 100;
  input.dataset.lpState = job.detail.state;
  input.dispatchEvent(new CustomEvent("lp-upload", { detail: { ...job.detail } }));
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

async function refusal(response) {
  const text = (await response.text()).trim();
  return new Refused(text || `upload refused (${response.status})`);
}

async function start(input, job, file) {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: headers(input, { "Content-Type": "application/json" }),
    body: JSON.stringify({ name: file.name, size: file.size, type: file.type }),
    signal: job.abort.signal,
  });
  if (!response.ok) throw await refusal(response);
  return (await response.json()).id;
}

// Where the server stands with an upload, asked until it answers (or the job ends).
async function where(input, job, url) {
  const response = await fetch(url, {
    method: "HEAD",
    headers: headers(input, {}),
    cache: "no-store",
    signal: job.abort.signal,
  });
  if (response.status === 404) throw new Refused("the upload was lost: choose the file again");
  if (!response.ok) throw new Error(`status ${response.status}`);
  return Number(response.headers.get(OFFSET));
}

async function send(input, job, file, id, before) {
  const url = `${endpoint}/${id}`;
  const chunk = Number(input.dataset.lpChunk) || 1048576;
  let offset = 0;
  let failures = 0;
  let lastProgress = Date.now();
  while (offset < file.size) {
    if (job.cancelled) throw new Cancelled();
    try {
      const response = await fetch(url, {
        method: "PATCH",
        headers: headers(input, {
          [OFFSET]: String(offset),
          "Content-Type": "application/offset+octet-stream",
        }),
        body: file.slice(offset, Math.min(offset + chunk, file.size)),
        signal: job.abort.signal,
      });
      if (response.ok) {
        offset = Number(response.headers.get(OFFSET));
        failures = 0;
        lastProgress = Date.now();
        report(input, job, { state: "uploading", loaded: before + offset, message: "" });
        continue;
      }
      if (response.status === 409) {
        // Another request of ours is still being written, or the server has more
        // (or less) than we thought: go on from where it stands.
        await sleep(100);
        offset = await where(input, job, url);
        continue;
      }
      if (response.status === 415) job.pending = job.pending.filter((held) => held !== id); // dropped
      if (response.status < 500 && response.status !== 408) throw await refusal(response);
      throw new Error(`status ${response.status}`);
    } catch (error) {
      if (error instanceof Refused || job.cancelled) throw error;
      if (Date.now() - lastProgress > RETRY_FOR_MS) throw new Refused("the connection is gone");
      failures += 1;
      report(input, job, { state: "retrying", message: "connection lost: retrying" });
      await sleep(Math.min(250 * 2 ** Math.min(failures, 5), 5000));
      try {
        offset = await where(input, job, url);
      } catch (again) {
        if (again instanceof Refused || job.cancelled) throw again;
      }
    }
  }
}

async function run(input, job, files) {
  const total = files.reduce((sum, file) => sum + file.size, 0);
  report(input, job, { state: "uploading", ids: [], loaded: 0, total, message: "" });
  let before = 0;
  for (const file of files) {
    const id = await start(input, job, file);
    job.pending.push(id);
    await send(input, job, file, id, before);
    job.detail.ids = [...job.detail.ids, id];
    before += file.size;
  }
  job.pending = [];
  report(input, job, { state: "done", loaded: total, message: "" });
}

// Delete what the server holds of a job, so it no longer counts against max_files.
function release(input, job) {
  const ids = [...new Set([...job.pending, ...job.detail.ids])];
  job.pending = [];
  const gone = (id) =>
    fetch(`${endpoint}/${id}`, { method: "DELETE", headers: headers(input, {}) }).catch(() => {});
  return Promise.all(ids.map(gone));
}

function cancel(input) {
  const job = jobs.get(input);
  if (!job) return Promise.resolve();
  jobs.delete(input);
  job.cancelled = true;
  job.abort.abort();
  const released = release(input, job);
  report(input, job, { state: "cancelled", ids: [], loaded: 0, message: "" });
  return released;
}

async function begin(input) {
  await cancel(input); // a new choice replaces the last one, whose files are deleted first
  const files = [...(input.files || [])];
  if (!files.length) return;
  const job = {
    abort: new AbortController(),
    cancelled: false,
    pending: [],
    detail: { state: "uploading", ids: [], loaded: 0, total: 0, percent: 0, message: "" },
  };
  jobs.set(input, job);
  run(input, job, files).catch((error) => {
    if (job.cancelled) return;
    jobs.delete(input);
    release(input, job); // one file refused: the whole choice is
    const message = error instanceof Refused ? error.message : `upload failed: ${error.message}`;
    report(input, job, { state: "error", ids: [], message });
  });
}

document.addEventListener("change", (event) => {
  const input = event.target;
  if (input instanceof HTMLInputElement && input.type === "file" && input.dataset.lpUpload) {
    begin(input);
  }
});

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element && event.target.closest("[data-lp-cancel]");
  if (!button) return;
  const name = button.getAttribute("data-lp-cancel");
  for (const input of document.querySelectorAll("input[type=file][data-lp-upload]")) {
    if (input.dataset.lpUpload === name) {
      cancel(input);
      input.value = "";
    }
  }
});
