import { nkeys } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { nativeNkeyAuthenticator, parseCredentials } from "./nats-connect.js";

describe("nkey authentication with Node's Ed25519", () => {
  it("signs the server's nonce as nats.js's own authenticator does: the public key verifies it", () => {
    const pair = nkeys.createUser();
    const seed = new TextDecoder().decode(pair.getSeed());
    const auth = nativeNkeyAuthenticator(seed, pair.getPublicKey())("a-nonce-from-the-server");
    expect(auth.nkey).toBe(pair.getPublicKey());
    const verifier = nkeys.fromPublic(auth.nkey);
    expect(verifier.verify(new TextEncoder().encode("a-nonce-from-the-server"), nkeys.decode(auth.sig))).toBe(true);
    expect(verifier.verify(new TextEncoder().encode("another nonce"), nkeys.decode(auth.sig))).toBe(false);
    // Ed25519 is deterministic: the very signature tweetnacl makes.
    expect(auth.sig).toBe(nkeys.encode(pair.sign(new TextEncoder().encode("a-nonce-from-the-server"))));
  });

  it("reads the public key from a credentials file, and refuses a malformed one", () => {
    const pair = nkeys.createUser();
    const file = { version: 1, identity: "shell", seed: new TextDecoder().decode(pair.getSeed()), ca: "-----BEGIN CERTIFICATE-----x", nkey: pair.getPublicKey() };
    expect(parseCredentials(JSON.stringify(file)).nkey).toBe(pair.getPublicKey());
    expect(() => parseCredentials(JSON.stringify({ ...file, nkey: "Unot-a-key" }))).toThrow(/bad nkey public key/);
    const { nkey: _, ...without } = file;
    expect(parseCredentials(JSON.stringify(without)).nkey).toBeUndefined();
  });
});
