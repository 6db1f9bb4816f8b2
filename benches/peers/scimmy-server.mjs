// A SCIMMY 1.x + scimmy-routers peer for benches/overhead.rs: Users (and Groups) in an
// in-memory Map, bearer auth, the SCIM routes at /scim/v2. Usage: node scimmy-server.mjs PORT TOKEN
import {randomUUID} from "node:crypto";
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const port = Number(process.argv[2] ?? 18101);
const token = process.argv[3] ?? "bench";

function store(kind) {
    const items = new Map();
    const names = new Set(); // lower-cased userNames: uniqueness without a scan
    return {
        ingress: (resource, instance) => {
            const now = new Date().toISOString();
            if (resource.id) {
                const old = items.get(resource.id);
                if (!old) throw new SCIMMY.Types.Error(404, null, `${kind} ${resource.id} not found`);
                const next = {...instance, id: resource.id, meta: {...old.meta, lastModified: now}};
                items.set(resource.id, next);
                return next;
            }
            if (kind === "User") {
                const name = instance.userName.toLowerCase();
                if (names.has(name)) throw new SCIMMY.Types.Error(409, "uniqueness", "userName already taken");
                names.add(name);
            }
            const id = randomUUID();
            const created = {...instance, id, meta: {created: now, lastModified: now}};
            items.set(id, created);
            return created;
        },
        egress: (resource) => {
            if (resource.id) {
                const item = items.get(resource.id);
                if (!item) throw new SCIMMY.Types.Error(404, null, `${kind} ${resource.id} not found`);
                return item;
            }
            const all = [...items.values()];
            return resource.filter ? resource.filter.match(all) : all;
        },
        degress: (resource) => {
            if (!items.delete(resource.id)) throw new SCIMMY.Types.Error(404, null, `${kind} ${resource.id} not found`);
        },
    };
}

for (const [resource, kind] of [[SCIMMY.Resources.User, "User"], [SCIMMY.Resources.Group, "Group"]]) {
    const s = store(kind);
    SCIMMY.Resources.declare(resource).ingress(s.ingress).egress(s.egress).degress(s.degress);
}

const app = express();
app.use("/scim/v2", new SCIMMYRouters({
    type: "bearer",
    handler: (request) => {
        if (request.header("Authorization") !== `Bearer ${token}`) throw new Error("Authorization not detected!");
        return "bench";
    },
}));
app.listen(port, "127.0.0.1", () => console.log(`scimmy listening on http://127.0.0.1:${port}/scim/v2`));
