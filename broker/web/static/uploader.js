// BrokerUploader: drag-and-drop uploads straight to storage through the broker.
//
//   <div id="uploads"></div>
//   <script src="https://broker.example/static/uploader.js"></script>
//   <script>
//     BrokerUploader.mount(document.getElementById("uploads"), {
//       broker: "https://broker.example",      // default: this page's origin
//       profile: "avatar",                     // or a function returning one
//       token: () => myApp.currentToken(),     // omit to use the session cookie
//     });
//   </script>
//
// Each file: ask the broker (POST /v1/uploads), send the form straight to storage
// with progress, then follow the verdict (GET /v1/uploads/{id}?wait=20, a long poll)
// until it settles.
(function (global) {
  "use strict";

  const SETTLED = ["ready", "rejected", "expired"];

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

  function usageText(usage) {
    const bytes = humanSize(usage.bytes) + (usage.quota.bytes === null ? "" : " of " + humanSize(usage.quota.bytes));
    const files = usage.files + (usage.quota.files === null ? "" : " of " + usage.quota.files) + " files";
    return "Stored: " + bytes + ", " + files;
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
      page.items.forEach((upload) => this.uploads.appendChild(this.uploadItem(upload)));
      this.nextCursor = page.next_cursor;
      this.more.hidden = !page.next_cursor;
    }

    uploadItem(upload) {
      const item = el("li", { class: "bu-upload", "data-id": upload.id, "data-state": upload.status });
      const image = upload.status === "ready" && (upload.content_type || "").startsWith("image/");
      // Thumbnails come from the delivered file only: nothing is shown before its verdict.
      item.appendChild(image
        ? el("img", { class: "bu-thumb", src: upload.url || upload.download_url, alt: "", loading: "lazy" })
        : el("span", { class: "bu-thumb" }));
      item.appendChild(el("span", { class: "bu-name", text: upload.filename }));
      item.appendChild(el("span", { class: "bu-size", text: upload.size === null ? "" : humanSize(upload.size) }));
      item.appendChild(el("span", { class: "bu-status", text: upload.status === "rejected" ? "rejected: " + upload.reason.message : upload.status }));
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
      item.appendChild(remove);
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
      };
    }

    async api(path, init) {
      const headers = Object.assign({}, (init && init.headers) || {});
      const token = typeof this.options.token === "function" ? this.options.token() : this.options.token;
      if (token) headers.Authorization = "Bearer " + token;
      const response = await fetch(this.broker + path, Object.assign({ credentials: "include" }, init, { headers }));
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
        xhr.onerror = () => reject(new Error("Network error while sending the file; check the connection and try again."));
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
        const created = await this.api("/v1/uploads", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ profile, filename: file.name, content_type: file.type || "application/octet-stream", size: file.size }),
        });
        await this.send(created.upload, file, ui);
        ui.progress.value = 100;
        const record = await this.verdict(created.id, ui);
        this.show(record, ui);
        this.refresh();
        if (this.options.onSettled) this.options.onSettled(record);
      } catch (error) {
        ui.set("error", error.message);
        if (!error.code) {
          // A network failure, not a refusal: the same file may simply be sent again.
          const retry = el("button", { type: "button", class: "bu-retry", text: "Retry" });
          retry.addEventListener("click", () => { ui.item.remove(); this.upload(file); });
          ui.action.appendChild(retry);
        }
      }
    }

    show(record, ui) {
      if (record.status === "ready") {
        ui.set("ready", "ready");
        const link = record.url
          ? el("a", { href: record.url, target: "_blank", rel: "noopener", text: "Open" })
          : el("a", { href: this.broker + "/v1/uploads/" + record.id + "/download", class: "bu-download", text: "Download" });
        if (!record.url) {
          // A fresh presigned link, fetched with our credentials when clicked.
          link.addEventListener("click", async (e) => {
            e.preventDefault();
            const fresh = await this.api("/v1/uploads/" + encodeURIComponent(record.id));
            global.location.assign(fresh.download_url);
          });
        }
        ui.action.appendChild(link);
      } else if (record.status === "rejected") {
        ui.set("rejected", "rejected: " + record.reason.message);
        ui.item.dataset.reason = record.reason.code;
      } else {
        ui.set("error", record.status);
      }
    }
  }

  global.BrokerUploader = { mount: (root, options) => new Uploader(root, options) };
})(window);
