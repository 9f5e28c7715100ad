// BrokerUploader: drag-and-drop uploads straight to storage through the broker.
//
//   <link rel="stylesheet" href="https://broker.example/static/uploader.css">
//   <div id="uploads"></div>
//   <script src="https://broker.example/static/uploader.js"></script>
//   <script>
//     BrokerUploader.mount(document.getElementById("uploads"), {
//       broker: "https://broker.example",      // default: this page's origin
//       profile: "avatar",                     // or a function returning one
//       token: () => myApp.currentToken(),     // a string, or a promise of one;
//                                              // omit to use the session cookie
//     });
//   </script>
//
// Each file: ask the broker (POST /v1/uploads), send the form straight to storage
// with progress, then follow the verdict (GET /v1/uploads/{id}?wait=20, a long poll)
// until it settles. Large files (the broker answers "multipart") go in parts, several
// at once, each hashed with WebCrypto so storage verifies it; they can be paused,
// resumed and cancelled, and after a dropped connection or a reload, choosing the
// same file again sends only the parts storage does not have yet.
(function (global) {
  "use strict";

  const SETTLED = ["ready", "rejected", "expired", "withdrawn"];
  const PART_BATCH = 8; // part URLs asked for at once
  const PART_ATTEMPTS = 3; // tries per part before the upload pauses with an error

  // Where a resumable upload of this very file is remembered across reloads.
  function resumeKey(broker, file) {
    return "bu-resume:" + broker + ":" + [file.name, file.size, file.lastModified].join(":");
  }

  async function sha256Base64(blob) {
    if (!(global.crypto && global.crypto.subtle)) return null; // not a secure context
    const digest = await global.crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
    return btoa(String.fromCharCode(...new Uint8Array(digest)));
  }

  class Stopped extends Error {}

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(c));
    return node;
  }

  function humanSize(bytes) {
    const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit === 0 ? String(value) : value.toFixed(1)) + " " + units[unit];
  }

  function plural(count, noun) {
    return count + " " + noun + (count === 1 ? "" : "s");
  }

  // Sizes as stored: what is served (a re-encoded image is smaller than its upload).
  function usageText(usage) {
    const bytes = humanSize(usage.bytes) + (usage.quota.bytes === null ? "" : " of " + humanSize(usage.quota.bytes));
    const files = usage.quota.files === null
      ? plural(usage.files, "file")
      : usage.files + " of " + plural(usage.quota.files, "file");
    return "Stored: " + bytes + " in " + files;
  }

  function storedSize(upload) {
    return upload.served ? upload.served.size : upload.size;
  }

  // A request that fails before any answer: the network, or the browser refusing a
  // cross-origin answer (CORS) that does not name this page's origin.
  function unreachableText(broker) {
    const origin = global.location.origin;
    if (new URL(broker, global.location.href).origin === origin) {
      return "The broker did not answer; check the connection and try again.";
    }
    return "The broker at " + broker + " did not answer this page (" + origin + "). If it is " +
      "running, add " + origin + " to its BROKER_ALLOWED_ORIGINS setting and restart it.";
  }

  // Types every browser shows in an <img>.
  const SHOWN = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"];

  // The smallest rendition when the profile makes them; else the served file itself,
  // when a browser can show it (a private HEIC, kept as uploaded, it cannot).
  function thumbnailOf(upload) {
    if (upload.status !== "ready" || !upload.served) return null;
    const smallest = (upload.served.renditions || [])[0];
    if (smallest) return smallest.url;
    const type = upload.served.content_type || upload.content_type || "";
    return SHOWN.includes(type) ? upload.url || upload.download_url : null;
  }

  function storageRefusedText(url) {
    const origin = global.location.origin;
    return "Network error sending the file to storage at " + new URL(url, global.location.href).origin +
      ". If the connection is fine, storage does not accept this page's origin (" + origin +
      "): add " + origin + " to BROKER_ALLOWED_ORIGINS and apply it to the bucket (`broker " +
      "provision --origin " + origin + "`, or restart `make run`).";
  }

  function problemText(body, status) {
    if (body && body.detail) return body.detail;
    if (status === 429) return "Too many uploads right now; try again shortly.";
    return "The broker answered " + status + ".";
  }

  class Uploader {
    constructor(root, options) {
      this.options = options || {};
      this.broker = (this.options.broker || global.location.origin).replace(/\/$/, "");
      this.pollMs = this.options.pollMs || 500;
      this.root = root;
      this.shown = new Set(); // uploads with a row of their own, left out of the library
      root.classList.add("bu-root"); // uploader.css styles and themes what is inside
      this.build();
    }

    build() {
      this.input = el("input", { type: "file", multiple: "", class: "bu-input", hidden: "" });
      this.zone = el("div", {
        class: "bu-zone", role: "button", tabindex: "0",
        "aria-label": "Choose files to upload, or drop them here",
      }, [el("span", { text: "Drop files here or press to choose" })]);
      this.list = el("ul", { class: "bu-list", "aria-live": "polite" });
      this.usage = el("p", { class: "bu-usage" });
      this.root.append(this.zone, this.input, this.list, this.usage);
      if (this.options.library !== false) {
        // The caller's uploads, newest first, a page at a time, with delete.
        this.uploads = el("ul", { class: "bu-uploads" });
        this.more = el("button", { type: "button", class: "bu-more", text: "More", hidden: "" });
        this.more.addEventListener("click", () => this.loadUploads(this.nextCursor));
        this.root.append(el("h2", { class: "bu-heading", text: "Your uploads" }), this.uploads, this.more);
      }
      this.refresh();

      this.zone.addEventListener("click", () => this.input.click());
      this.zone.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.input.click(); }
      });
      this.input.addEventListener("change", () => { this.addFiles(this.input.files); this.input.value = ""; });
      ["dragenter", "dragover"].forEach((t) => this.zone.addEventListener(t, (e) => {
        e.preventDefault(); this.zone.classList.add("bu-over");
      }));
      ["dragleave", "drop"].forEach((t) => this.zone.addEventListener(t, () => this.zone.classList.remove("bu-over")));
      this.zone.addEventListener("drop", (e) => { e.preventDefault(); this.addFiles(e.dataTransfer.files); });
    }

    // Everything that depends on who the caller is: call again when the token changes.
    refresh() {
      this.showUsage();
      if (this.uploads) this.loadUploads(null);
    }

    async loadUploads(cursor) {
      const load = (this.loads = (this.loads || 0) + 1); // only the latest load is shown
      let page;
      try {
        page = await this.api("/v1/uploads?limit=10" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      } catch (error) {
        if (!cursor && load === this.loads) this.uploads.replaceChildren();
        return;
      }
      if (load !== this.loads) return;
      if (!cursor) this.uploads.replaceChildren();
      page.items
        .filter((upload) => !this.shown.has(upload.id)) // already a row above
        .forEach((upload) => this.uploads.appendChild(this.uploadItem(upload)));
      this.nextCursor = page.next_cursor;
      this.more.hidden = !page.next_cursor;
    }

    uploadItem(upload) {
      const item = el("li", { class: "bu-upload", "data-id": upload.id, "data-state": upload.status });
      // Thumbnails come from the delivered files only: nothing is shown before its verdict.
      const thumb = thumbnailOf(upload);
      item.appendChild(thumb
        ? el("img", { class: "bu-thumb", src: thumb, alt: "", loading: "lazy" })
        : el("span", { class: "bu-thumb" }));
      item.appendChild(el("span", { class: "bu-name", text: upload.filename }));
      const size = storedSize(upload);
      const sizeText = el("span", { class: "bu-size", text: size === null ? "" : humanSize(size) });
      if (upload.served && upload.served.rewritten) {
        sizeText.title = "stored " + humanSize(upload.served.size) + ", uploaded " + humanSize(upload.size);
      }
      item.appendChild(sizeText);
      item.appendChild(el("span", { class: "bu-status", text: upload.reason ? upload.status + ": " + upload.reason.message : upload.status }));
      const actions = el("span", { class: "bu-actions" });
      if (upload.status === "ready") actions.appendChild(this.openLink(upload));
      const remove = el("button", { type: "button", class: "bu-delete", text: "Delete", "aria-label": "Delete " + upload.filename });
      remove.addEventListener("click", async () => {
        remove.disabled = true;
        try {
          await this.api("/v1/uploads/" + encodeURIComponent(upload.id), { method: "DELETE" });
          item.remove();
          this.refresh(); // and any listing still in flight is superseded
        } catch (error) {
          remove.disabled = false;
          item.querySelector(".bu-status").textContent = error.message;
        }
      });
      actions.appendChild(remove);
      item.appendChild(actions);
      return item;
    }

    // The caller's storage against the quota; silent until the broker knows who they are.
    async showUsage() {
      try {
        this.usage.textContent = usageText(await this.api("/v1/usage"));
      } catch (error) {
        this.usage.textContent = "";
      }
    }

    addFiles(files) {
      Array.from(files || []).forEach((file) => this.upload(file));
    }

    row(file) {
      const progress = el("progress", { max: "100", value: "0", "aria-label": "Upload progress of " + file.name });
      const status = el("span", { class: "bu-status", text: "waiting" });
      const action = el("span", { class: "bu-action" });
      const item = el("li", { class: "bu-item", "data-state": "waiting" },
        [el("span", { class: "bu-name", text: file.name }), progress, status, action]);
      this.list.appendChild(item);
      return {
        item, progress, action,
        set(state, text) { item.dataset.state = state; status.textContent = text; },
        button(label, onClick) {
          const button = el("button", { type: "button", class: "bu-" + label.toLowerCase(), text: label });
          button.addEventListener("click", onClick);
          action.appendChild(button);
          return button;
        },
      };
    }

    async api(path, init) {
      const headers = Object.assign({}, (init && init.headers) || {});
      const source = this.options.token;
      // `token` may be a string, a function returning one, or a promise of one.
      const token = await (typeof source === "function" ? source() : source);
      if (token) headers.Authorization = "Bearer " + token;
      // The session cookie only in cookie mode: a bearer call needs no credentials, and a
      // credentialed call from another origin needs the broker's explicit consent.
      const credentials = token ? "omit" : "include";
      let response;
      try {
        response = await fetch(this.broker + path, Object.assign({ credentials }, init, { headers }));
      } catch (failure) {
        throw new Error(unreachableText(this.broker));
      }
      const body = response.status === 204 ? null : await response.json().catch(() => null);
      if (!response.ok) {
        const error = new Error(problemText(body, response.status));
        error.code = body && body.code;
        throw error;
      }
      return body;
    }

    send(upload, file, ui) {
      return new Promise((resolve, reject) => {
        const form = new FormData();
        Object.entries(upload.fields).forEach(([k, v]) => form.append(k, v));
        form.append("file", file); // storage reads the fields first: the file goes last
        const xhr = new XMLHttpRequest();
        xhr.open("POST", upload.url);
        xhr.upload.onprogress = (e) => {
          if (!e.lengthComputable) return;
          ui.progress.value = Math.round((e.loaded / e.total) * 100);
          ui.item.dataset.progress = String(ui.progress.value);
        };
        xhr.onload = () => (xhr.status >= 200 && xhr.status < 300)
          ? resolve()
          : reject(new Error("Storage refused the file (HTTP " + xhr.status + ")."));
        xhr.onerror = () => reject(new Error(storageRefusedText(upload.url)));
        xhr.send(form);
      });
    }

    // Long polls: the broker answers as soon as the status changes. Should one fail
    // (a proxy cutting held requests, a network blip), poll plainly from then on.
    async verdict(id, ui) {
      const seconds = this.options.waitSeconds ?? 20; // 0: poll every pollMs instead
      let wait = seconds > 0 ? "?wait=" + seconds : "";
      for (;;) {
        let record;
        try {
          record = await this.api("/v1/uploads/" + encodeURIComponent(id) + wait);
        } catch (error) {
          if (error.code || !wait) throw error; // the API refused: say why
          wait = "";
          continue;
        }
        if (SETTLED.includes(record.status)) return record;
        ui.set("checking", "checking");
        if (!wait) await new Promise((r) => setTimeout(r, this.pollMs));
      }
    }

    async upload(file) {
      const ui = this.row(file);
      const profile = typeof this.options.profile === "function" ? this.options.profile() : this.options.profile;
      try {
        ui.set("uploading", "uploading");
        let id = await this.resumable(file);
        if (!id) {
          const created = await this.api("/v1/uploads", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ profile, filename: file.name, content_type: file.type || "application/octet-stream", size: file.size }),
          });
          id = created.id;
          if (created.upload.method === "multipart") {
            global.localStorage.setItem(resumeKey(this.broker, file), id);
          } else {
            await this.send(created.upload, file, ui);
          }
        }
        this.shown.add(id);
        if (global.localStorage.getItem(resumeKey(this.broker, file)) === id) {
          await this.sendInParts(id, file, ui);
          global.localStorage.removeItem(resumeKey(this.broker, file));
        }
        ui.progress.value = 100;
        const record = await this.verdict(id, ui);
        this.show(record, ui);
        this.refresh();
        const settled = this.options.onSettled;
        if (typeof settled === "function") settled(record);
        // From a server-rendered page (the Flask extension's helper): show the new file.
        else if (settled === "reload" && record.status === "ready") global.location.reload();
      } catch (error) {
        if (error instanceof Stopped) return; // paused or cancelled: the row says so
        ui.set("error", error.message);
        if (!error.code) {
          // A network failure, not a refusal: the same file may simply be sent again.
          const retry = el("button", { type: "button", class: "bu-retry", text: "Retry" });
          retry.addEventListener("click", () => { ui.item.remove(); this.upload(file); });
          ui.action.appendChild(retry);
        }
      }
    }

    // An upload in parts of this same file, started before a reload and still open.
    async resumable(file) {
      const id = global.localStorage.getItem(resumeKey(this.broker, file));
      if (!id) return null;
      try {
        await this.api("/v1/uploads/" + encodeURIComponent(id) + "/parts");
        return id;
      } catch (error) {
        if (!error.code) throw error; // the network, not the upload: try again later
        global.localStorage.removeItem(resumeKey(this.broker, file)); // gone, expired, done
        return null;
      }
    }

    // Send the parts storage lacks, PART_BATCH URLs at a time and a few parts at once,
    // then complete. Pause keeps what was sent; resume asks storage what it has.
    async sendInParts(id, file, ui) {
      const control = { stopped: null, requests: new Set() };
      const stop = (why) => {
        control.stopped = why;
        control.requests.forEach((xhr) => xhr.abort());
      };
      ui.action.replaceChildren();
      const pause = ui.button("Pause", () => { stop("paused"); ui.set("paused", "paused"); showResume(); });
      ui.button("Cancel", async () => {
        stop("cancelled");
        ui.set("cancelled", "cancelled");
        ui.action.replaceChildren();
        global.localStorage.removeItem(resumeKey(this.broker, file));
        await this.api("/v1/uploads/" + encodeURIComponent(id), { method: "DELETE" }).catch(() => null);
      });
      const showResume = () => {
        pause.hidden = true;
        const resume = ui.button("Resume", () => {
          resume.remove();
          ui.item.remove();
          this.upload(file);
        });
      };
      const path = "/v1/uploads/" + encodeURIComponent(id);
      const stored = await this.api(path + "/parts");
      const partSize = stored.part_size, count = stored.part_count;
      const done = new Map(stored.parts.map((p) => [p.part_number, p.size]));
      const sent = new Map(); // bytes of each part in flight
      const progress = () => {
        let bytes = 0;
        done.forEach((size) => { bytes += size; });
        sent.forEach((size) => { bytes += size; });
        ui.progress.value = Math.floor((bytes / file.size) * 100);
        ui.item.dataset.progress = String(ui.progress.value);
      };
      progress();
      const slice = (n) => file.slice((n - 1) * partSize, Math.min(n * partSize, file.size));
      const missing = [];
      for (let n = 1; n <= count; n += 1) if (done.get(n) !== slice(n).size) missing.push(n);
      ui.item.dataset.parts = String(count);
      ui.item.dataset.resumedWith = String(count - missing.length);
      const concurrency = this.options.partConcurrency || 4;
      for (let start = 0; start < missing.length; start += PART_BATCH) {
        const batch = missing.slice(start, start + PART_BATCH);
        const sha256 = {};
        for (const n of batch) {
          const digest = await sha256Base64(slice(n));
          if (digest) sha256[String(n)] = digest;
        }
        if (control.stopped) throw new Stopped(control.stopped);
        const signed = await this.api(path + "/parts", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ part_numbers: batch, sha256 }),
        });
        const queue = signed.parts.slice();
        const worker = async () => {
          for (let part = queue.shift(); part; part = queue.shift()) {
            await this.sendPart(part, slice(part.part_number), control, (bytes) => {
              sent.set(part.part_number, bytes);
              progress();
            });
            sent.delete(part.part_number);
            done.set(part.part_number, slice(part.part_number).size);
            progress();
          }
        };
        await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
      }
      ui.action.replaceChildren();
      ui.set("checking", "assembling");
      await this.api(path + "/complete", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
      });
    }

    async sendPart(part, blob, control, onProgress) {
      for (let attempt = 1; ; attempt += 1) {
        if (control.stopped) throw new Stopped(control.stopped);
        try {
          await new Promise((resolve, reject) => {
            const xhr = new XMLHttpRequest();
            control.requests.add(xhr);
            xhr.open("PUT", part.url);
            Object.entries(part.headers).forEach(([k, v]) => xhr.setRequestHeader(k, v));
            xhr.upload.onprogress = (e) => onProgress(e.loaded);
            xhr.onloadend = () => control.requests.delete(xhr);
            xhr.onload = () => (xhr.status >= 200 && xhr.status < 300)
              ? resolve()
              : reject(new Error("Storage refused part " + part.part_number + " (HTTP " + xhr.status + ")."));
            xhr.onerror = () => reject(new Error(storageRefusedText(part.url)));
            xhr.onabort = () => reject(new Stopped("stopped"));
            xhr.send(blob);
          });
          return;
        } catch (error) {
          if (error instanceof Stopped || control.stopped) throw new Stopped(control.stopped || "stopped");
          if (attempt >= PART_ATTEMPTS) throw error;
          onProgress(0);
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
    }

    // Open (public, from the CDN) or Download (private: a fresh short link when clicked).
    openLink(record) {
      const name = record.filename;
      const link = record.url
        ? el("a", { href: record.url, target: "_blank", rel: "noopener", class: "bu-open", text: "Open", "aria-label": "Open " + name })
        : el("a", { href: this.broker + "/v1/uploads/" + record.id + "/download", class: "bu-download", text: "Download", "aria-label": "Download " + name });
      if (!record.url) {
        // A fresh presigned link, fetched with our credentials when clicked.
        link.addEventListener("click", async (e) => {
          e.preventDefault();
          const fresh = await this.api("/v1/uploads/" + encodeURIComponent(record.id));
          global.location.assign(fresh.download_url);
        });
      }
      return link;
    }

    show(record, ui) {
      if (record.status === "ready") {
        ui.set("ready", "ready");
        ui.action.appendChild(this.openLink(record));
      } else if (record.status === "rejected" || record.status === "withdrawn") {
        ui.set("rejected", record.status + ": " + record.reason.message);
        ui.item.dataset.reason = record.reason.code;
      } else {
        ui.set("error", record.status);
      }
    }
  }

  global.BrokerUploader = { mount: (root, options) => new Uploader(root, options) };
})(window);
