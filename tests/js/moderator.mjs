// A moderator on matrix-js-sdk with its Rust crypto in "exclude insecure devices" mode
// (OnlySignedDevicesIsolationMode, MSC4153), as Element runs it. Driven by the Python tests.
//
//   node moderator.mjs --homeserver URL --user @mod:hs --password PW --room !room:hs
//
// It logs in (a new device), sets up cross-signing for its account, then prints one JSON line
// per fact on standard output: {"type":"ready", ...} once synced, and for each line
// {"send": "text"} read from standard input, {"type":"sent", ...} followed by
// {"type":"reply", ...} (the answer to that message, decrypted, with its shield) or
// {"type":"undecryptable", ...} (an event from someone else it could not decrypt).
// It exits when standard input closes. Everything else (the SDK's logs) goes to standard error.

import { parseArgs } from "node:util";
import * as readline from "node:readline";

import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { OnlySignedDevicesIsolationMode, EventShieldColour, EventShieldReason } from "matrix-js-sdk/lib/crypto-api/index.js";

// matrix-js-sdk 43 declares Node >= 22; Node 20 (still on CI machines) lacks only this builtin.
Promise.withResolvers ??= function withResolvers() {
  let resolve, reject;
  const promise = new this((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
};

// The SDK logs through console.*: keep standard output for our JSON lines.
for (const name of ["log", "info", "debug", "warn", "trace"]) console[name] = console.error;
logger.setLevel(process.env.MODERATOR_LOG_LEVEL || "warn");

const { values: args } = parseArgs({
  options: {
    homeserver: { type: "string" },
    user: { type: "string" },
    password: { type: "string" },
    room: { type: "string" },
  },
});
for (const key of ["homeserver", "user", "password", "room"]) {
  if (!args[key]) {
    console.error(`missing --${key}`);
    process.exit(2);
  }
}

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function passwordAuth(session) {
  return {
    type: "m.login.password",
    identifier: { type: "m.id.user", user: args.user },
    password: args.password,
    ...(session ? { session } : {}),
  };
}

async function main() {
  const anonymous = sdk.createClient({ baseUrl: args.homeserver });
  const login = await anonymous.loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: args.user },
    password: args.password,
    initial_device_display_name: "js-sdk moderator (tests)",
  });
  anonymous.stopClient();

  const client = sdk.createClient({
    baseUrl: args.homeserver,
    userId: login.user_id,
    deviceId: login.device_id,
    accessToken: login.access_token,
  });
  await client.initRustCrypto({ useIndexedDB: false });
  const crypto = client.getCrypto();
  crypto.setDeviceIsolationMode(new OnlySignedDevicesIsolationMode());

  const prepared = new Promise((resolve) => {
    client.on(sdk.ClientEvent.Sync, (state) => {
      if (state === "PREPARED" || state === "SYNCING") resolve();
    });
  });
  await client.startClient({ initialSyncLimit: 20 });
  await prepared;

  // Our own device must be cross-signed too: the bot may refuse commands from unsigned devices.
  await crypto.bootstrapCrossSigning({
    authUploadDeviceSigningKeys: async (makeRequest) => {
      try {
        await makeRequest(null); // current Synapse: the first upload needs no interactive auth
      } catch (error) {
        if (error.httpStatus !== 401 || !error.data?.session) throw error;
        await makeRequest(passwordAuth(error.data.session));
      }
    },
  });
  const own = await crypto.getDeviceVerificationStatus(login.user_id, login.device_id);

  const waiting = new Map(); // event ID of our message -> resolve(reply line)
  const failed = new Set(); // undecryptable events already reported (a late key may still unlock them)

  // Called for each new timeline event and again after each decryption attempt.
  async function consider(event) {
    if (event.getRoomId() !== args.room || event.getSender() === login.user_id) return;
    const id = event.getId();
    if (!id) return;
    if (event.isEncrypted()) await client.decryptEventIfNeeded(event);
    if (event.isBeingDecrypted()) return;
    if (event.isDecryptionFailure()) {
      if (failed.has(id)) return;
      failed.add(id);
      emit({
        type: "undecryptable", event_id: id, sender: event.getSender(),
        reason: event.decryptionFailureReason ?? null, device_id: event.getWireContent().device_id ?? null,
      });
      return;
    }
    const inReplyTo = event.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id;
    const resolve = inReplyTo && waiting.get(inReplyTo);
    if (!resolve) return;
    waiting.delete(inReplyTo);
    const info = event.isEncrypted() ? await crypto.getEncryptionInfoForEvent(event) : null;
    const deviceId = event.getWireContent().device_id ?? null;
    const device = deviceId ? await crypto.getDeviceVerificationStatus(event.getSender(), deviceId) : null;
    resolve({
      type: "reply",
      event_id: id,
      in_reply_to: inReplyTo,
      sender: event.getSender(),
      encrypted: event.isEncrypted(),
      body: event.getContent().body ?? null,
      shield: info ? EventShieldColour[info.shieldColour] : null,
      shield_reason: info && info.shieldReason !== null ? EventShieldReason[info.shieldReason] : null,
      sender_device: deviceId,
      sender_device_signed_by_owner: device ? device.signedByOwner : null,
    });
  }

  client.on(sdk.RoomEvent.Timeline, (event) => { consider(event).catch((e) => console.error(e)); });
  client.on(sdk.MatrixEventEvent.Decrypted, (event) => { consider(event).catch((e) => console.error(e)); });

  emit({
    type: "ready",
    user_id: login.user_id,
    device_id: login.device_id,
    cross_signing_ready: await crypto.isCrossSigningReady(),
    device_signed_by_owner: own ? own.signedByOwner : null,
    isolation: "OnlySignedDevicesIsolationMode",
  });

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const { send } = JSON.parse(line);
    try {
      const { event_id } = await client.sendTextMessage(args.room, send);
      const reply = new Promise((resolve) => waiting.set(event_id, resolve));
      emit({ type: "sent", event_id, body: send });
      reply.then(emit);
    } catch (error) {
      emit({ type: "send_failed", body: send, error: String(error?.message ?? error) });
    }
  }
  client.stopClient();
  process.exit(0);
}

main().catch((error) => {
  emit({ type: "fatal", error: String(error?.stack ?? error) });
  process.exit(1);
});
