/* Segment builder: edits a definition of the segment language (siyu/segments/dsl.py) as a tree
 * of groups and conditions, mirrors it as JSON in the advanced textarea, and asks the server
 * for a live count while you edit. The server validates everything; this only shapes input.
 *
 * Loaded without `defer`, so the component is registered before Alpine starts.
 */
document.addEventListener("alpine:init", function () {
  "use strict";

  var nextId = 1;
  var GROUP_KEYS = ["all", "any", "not"];
  var ORDER_KEYS = ["within_days", "product", "count", "amount", "none"];
  var EVENT_KEYS = ["type", "within_days", "properties", "at_least", "none"];

  function readJson(id, fallback) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : fallback;
  }

  function group(mode, children) {
    return { id: nextId++, type: "group", mode: mode, children: children || [] };
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  window.Alpine.data("segmentBuilder", function (previewUrl) {
    var vocab = readJson("builder-vocabulary", {});
    var attributes = {};
    (vocab.attributes || []).forEach(function (a) { attributes[a.name] = a; });

    function attrSpec(name) { return attributes[name] || vocab.attributes[0]; }

    function opSpec(node) {
      var ops = attrSpec(node.attr).ops;
      return ops.find(function (o) { return o.op === node.op; }) || ops[0];
    }

    function typed(spec, text) {
      if (spec.type === "int") { return text === "" ? null : Number.parseInt(text, 10); }
      if (spec.type === "number") { return text === "" ? null : Number(text); }
      if (spec.type === "bool") { return text === "" ? null : text === "true"; }
      return text;
    }

    function leaf(kind) {
      var node = { id: nextId++, type: kind };
      if (kind === "attr") {
        node.attr = vocab.attributes[0].name;
        node.op = vocab.attributes[0].ops[0].op;
        node.value = ""; node.value2 = ""; node.values = [];
      } else if (kind === "tags") {
        node.mode = "any"; node.ids = [];
      } else if (kind === "orders") {
        node.within = ""; node.product = ""; node.measure = "any"; node.gte = ""; node.lte = "";
      } else if (kind === "events") {
        node.etype = ""; node.within = ""; node.props = ""; node.measure = "at_least"; node.times = "";
      } else if (kind === "relationship") {
        node.kind = vocab.relationships[0][0];
      } else {
        node.text = "{}";
      }
      return node;
    }

    function rawLeaf(definition) {
      var node = leaf("json");
      node.text = JSON.stringify(definition);
      return node;
    }

    // ------------------------------------------------------------------ definition → tree

    function fromAttr(def) {
      var spec = attributes[def.attr];
      var op = spec && spec.ops.find(function (o) { return o.op === def.op; });
      if (!op || Object.keys(def).length !== 3) { return rawLeaf(def); }
      var node = leaf("attr");
      node.attr = def.attr; node.op = def.op;
      if (op.arity === "many") {
        if (!Array.isArray(def.value)) { return rawLeaf(def); }
        node.values = def.value.map(String);
      } else if (op.arity === "pair") {
        if (!Array.isArray(def.value) || def.value.length !== 2) { return rawLeaf(def); }
        node.value = String(def.value[0]); node.value2 = String(def.value[1]);
      } else {
        if (isObject(def.value) || Array.isArray(def.value)) { return rawLeaf(def); }
        node.value = def.value === null ? "" : String(def.value);
      }
      return node;
    }

    function fromOrders(def) {
      var spec = def.orders;
      if (!isObject(spec) || Object.keys(spec).some(function (k) { return ORDER_KEYS.indexOf(k) < 0; })) {
        return rawLeaf(def);
      }
      var node = leaf("orders");
      node.within = spec.within_days === undefined ? "" : String(spec.within_days);
      node.product = spec.product || "";
      ["count", "amount"].forEach(function (measure) {
        if (isObject(spec[measure])) {
          node.measure = measure;
          node.gte = spec[measure].gte === undefined ? "" : String(spec[measure].gte);
          node.lte = spec[measure].lte === undefined ? "" : String(spec[measure].lte);
        }
      });
      if (spec.none === true) { node.measure = "none"; }
      return node;
    }

    // Properties are typed as `name=value, …`; a value that reads as a number or a boolean
    // is one (the language compares JSON types); quote it in the JSON to keep it a string.
    function propertiesText(properties) {
      return Object.keys(properties).map(function (k) { return k + "=" + String(properties[k]); }).join(", ");
    }

    function parseProperties(text) {
      var properties = {};
      text.split(/[,，\n]/).forEach(function (pair) {
        var at = pair.indexOf("=");
        if (at < 1) { return; }
        var value = pair.slice(at + 1).trim();
        if (/^-?\d+(\.\d+)?$/.test(value)) { value = Number(value); }
        else if (value === "true" || value === "false") { value = value === "true"; }
        properties[pair.slice(0, at).trim()] = value;
      });
      return properties;
    }

    function fromEvents(def) {
      var spec = def.events;
      if (!isObject(spec) || Object.keys(spec).some(function (k) { return EVENT_KEYS.indexOf(k) < 0; })) {
        return rawLeaf(def);
      }
      var props = spec.properties;
      if (props !== undefined && (!isObject(props) || Object.keys(props).some(function (k) {
        var v = props[k];
        return typeof v === "string" ? /^(-?\d+(\.\d+)?|true|false)$/.test(v) || /[,，=\n]/.test(v) : typeof v === "object";
      }))) {
        return rawLeaf(def);  // not representable as name=value text
      }
      var node = leaf("events");
      node.etype = spec.type === undefined ? "" : String(spec.type);
      node.within = spec.within_days === undefined ? "" : String(spec.within_days);
      node.props = props ? propertiesText(props) : "";
      if (spec.none === true) { node.measure = "none"; }
      node.times = spec.at_least === undefined ? "" : String(spec.at_least);
      return node;
    }

    function fromDef(def) {
      if (!isObject(def) || Object.keys(def).length === 0) { return rawLeaf(def); }
      var keys = Object.keys(def);
      if (keys.length === 1 && (def.all || def.any) && Array.isArray(def.all || def.any)) {
        var mode = def.all ? "all" : "any";
        return group(mode, def[mode].map(fromDef));
      }
      if (keys.length === 1 && def.not !== undefined) {
        var inner = def.not;
        if (isObject(inner) && Object.keys(inner).length === 1 && Array.isArray(inner.any)) {
          return group("none", inner.any.map(fromDef));
        }
        return group("none", [fromDef(inner)]);
      }
      if (def.attr !== undefined) { return fromAttr(def); }
      if (keys.length === 1 && isObject(def.tags) && Object.keys(def.tags).length === 1) {
        var tagMode = Object.keys(def.tags)[0];
        if (["any", "all", "none"].indexOf(tagMode) >= 0 && Array.isArray(def.tags[tagMode])) {
          var tags = leaf("tags");
          tags.mode = tagMode; tags.ids = def.tags[tagMode].map(String);
          return tags;
        }
      }
      if (keys.length === 1 && def.orders !== undefined) { return fromOrders(def); }
      if (keys.length === 1 && def.events !== undefined) { return fromEvents(def); }
      if (keys.length === 1 && typeof def.relationship === "string" &&
          vocab.relationships.some(function (r) { return r[0] === def.relationship; })) {
        var rel = leaf("relationship");
        rel.kind = def.relationship;
        return rel;
      }
      return rawLeaf(def);
    }

    function rootFrom(def) {
      var node = fromDef(def);
      return node.type === "group" ? node : group("all", [node]);
    }

    // ------------------------------------------------------------------ tree → definition

    function range(node, convert) {
      var bounds = {};
      if (node.gte !== "") { bounds.gte = convert(node.gte); }
      if (node.lte !== "") { bounds.lte = convert(node.lte); }
      return bounds;
    }

    function toDef(node) {
      if (node.type === "group") {
        var children = node.children.map(toDef);
        if (node.mode === "none") {
          return { not: children.length === 1 ? children[0] : { any: children } };
        }
        var out = {};
        out[node.mode] = children;
        return out;
      }
      if (node.type === "attr") {
        var op = opSpec(node);
        var value;
        if (op.arity === "many") {
          value = node.values.map(function (v) { return typed(op, v); });
        } else if (op.arity === "pair") {
          value = [typed(op, node.value), typed(op, node.value2)];
        } else if (op.arity === "flag") {
          value = node.value !== "false";
        } else {
          value = typed(op, node.value);
        }
        return { attr: node.attr, op: node.op, value: value };
      }
      if (node.type === "tags") {
        var tags = {};
        tags[node.mode] = node.ids.map(Number);
        return { tags: tags };
      }
      if (node.type === "orders") {
        var spec = {};
        if (node.within !== "") { spec.within_days = Number.parseInt(node.within, 10); }
        if (node.product !== "") { spec.product = node.product; }
        if (node.measure === "none") { spec.none = true; }
        if (node.measure === "count") { spec.count = range(node, function (v) { return Number.parseInt(v, 10); }); }
        if (node.measure === "amount") { spec.amount = range(node, Number); }
        // "At least one order", with no window or product, is a count of at least one.
        if (Object.keys(spec).length === 0) { spec.count = { gte: 1 }; }
        return { orders: spec };
      }
      if (node.type === "events") {
        var events = { type: node.etype };
        if (node.within !== "") { events.within_days = Number.parseInt(node.within, 10); }
        if (node.props.trim() !== "") { events.properties = parseProperties(node.props); }
        if (node.measure === "none") { events.none = true; }
        else if (node.times !== "") { events.at_least = Number.parseInt(node.times, 10); }
        return { events: events };
      }
      if (node.type === "relationship") { return { relationship: node.kind }; }
      try { return JSON.parse(node.text); } catch (e) { return node.text; }
    }

    return {
      vocab: vocab,
      root: group("all", []),
      json: "",
      jsonError: "",
      editingJson: false,
      timer: null,
      sequence: 0,
      loading: false,

      init: function () {
        var text = readJson("builder-definition", "");
        this.json = text;
        if (text) {
          try { this.root = rootFrom(JSON.parse(text)); } catch (e) { this.jsonError = e.message; }
        }
        this.$watch("root", this.sync.bind(this));
        this.sync();
      },

      attrSpec: function (node) { return attrSpec(node.attr); },
      opSpec: opSpec,
      choices: function (node) { return attrSpec(node.attr).choices || []; },

      rows: function () {
        var out = [];
        (function walk(node, depth, parent) {
          out.push({ node: node, depth: depth, parent: parent });
          if (node.type === "group") {
            node.children.forEach(function (child) { walk(child, depth + 1, node); });
          }
        })(this.root, 0, null);
        return out;
      },

      add: function (parent, kind) {
        parent.children.push(kind === "group" ? group("all", [leaf("attr")]) : leaf(kind));
      },

      remove: function (row) {
        var index = row.parent.children.indexOf(row.node);
        if (index >= 0) { row.parent.children.splice(index, 1); }
      },

      changeKind: function (row, kind) {
        var index = row.parent.children.indexOf(row.node);
        if (index >= 0) { row.parent.children.splice(index, 1, leaf(kind)); }
      },

      resetAttr: function (node) {
        node.op = attrSpec(node.attr).ops[0].op;
        node.value = ""; node.value2 = ""; node.values = [];
      },

      definition: function () { return toDef(this.root); },

      isEmpty: function () { return this.root.children.length === 0; },

      sync: function () {
        var definition = this.definition();
        if (!this.editingJson) {
          this.json = this.isEmpty() ? "" : JSON.stringify(definition, null, 2);
          this.jsonError = "";
        }
        this.schedule(this.isEmpty() ? null : JSON.stringify(definition));
      },

      editJson: function () {
        if (this.json.trim() === "") { this.root = group("all", []); return; }
        try {
          this.root = rootFrom(JSON.parse(this.json));
          this.jsonError = "";
        } catch (e) {
          this.jsonError = e.message;
        }
      },

      schedule: function (body) {
        var self = this;
        clearTimeout(this.timer);
        if (body === null) { this.$refs.preview.innerHTML = ""; return; }
        this.timer = setTimeout(function () { self.count(body); }, 400);
      },

      count: function (body) {
        var self = this;
        var mine = ++this.sequence;
        var data = new FormData();
        data.append("definition", body);
        data.append("csrfmiddlewaretoken", this.$root.querySelector("[name=csrfmiddlewaretoken]").value);
        this.loading = true;
        fetch(previewUrl, { method: "POST", body: data, credentials: "same-origin" })
          .then(function (response) { return response.text(); })
          .then(function (html) {
            if (mine === self.sequence) { self.$refs.preview.innerHTML = html; }
          })
          .finally(function () { if (mine === self.sequence) { self.loading = false; } });
      }
    };
  });
});
