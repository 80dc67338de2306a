/**
 * Packet-level mutations of OpenPGP key files and signatures for the key
 * fuzzer (test/fuzz/keys.mjs): whole packets dropped, duplicated, swapped,
 * moved or borrowed from other keys (revocations, junk signatures, foreign
 * subkeys and user IDs), and edits inside packets — version, type and
 * algorithm bytes, creation times, subpacket types and critical bits,
 * lengths, truncated or extended signature values — so that every edit
 * reaches the parsers as a well-framed packet sequence.
 */

/** Split binary OpenPGP data into packets ({ tag, body }); null if the framing is broken. */
export function splitPackets(data) {
  const out = [];
  let i = 0;
  while (i < data.length) {
    const first = data[i];
    if ((first & 0x80) === 0) return null;
    let tag;
    let len;
    let pos = i + 1;
    if (first & 0x40) {
      tag = first & 0x3f;
      const a = data[pos];
      if (a < 192) {
        len = a;
        pos += 1;
      } else if (a < 224) {
        len = ((a - 192) << 8) + data[pos + 1] + 192;
        pos += 2;
      } else if (a === 255) {
        len = data.readUInt32BE(pos + 1);
        pos += 5;
      } else return null;
    } else {
      tag = (first >> 2) & 0x0f;
      const n = [1, 2, 4, 0][first & 3];
      if (!n) return null;
      len = data.readUIntBE(pos, n);
      pos += n;
    }
    if (pos + len > data.length) return null;
    out.push({ tag, body: Buffer.from(data.subarray(pos, pos + len)) });
    i = pos + len;
  }
  return out;
}

export function joinPackets(list) {
  return Buffer.concat(
    list.map(({ tag, body }) => {
      const n = body.length;
      const head =
        n < 192 ? [n] : n < 8384 ? [((n - 192) >> 8) + 192, (n - 192) & 0xff] : [255, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
      return Buffer.concat([Buffer.from([0xc0 | tag, ...head]), body]);
    }),
  );
}

/** Offsets of the subpackets of a v4 signature body: [{ at, len, typeAt }]. */
function subpackets(body) {
  const out = [];
  if (body[0] !== 4 || body.length < 8) return out;
  const areas = [];
  const hashedLen = body.readUInt16BE(4);
  areas.push([6, 6 + hashedLen]);
  if (6 + hashedLen + 2 <= body.length) {
    const u = body.readUInt16BE(6 + hashedLen);
    areas.push([8 + hashedLen, 8 + hashedLen + u]);
  }
  for (const [start, end] of areas) {
    let i = start;
    while (i < end && i < body.length) {
      const a = body[i];
      let len;
      let pos;
      if (a < 192) [len, pos] = [a, i + 1];
      else if (a < 255) [len, pos] = [((a - 192) << 8) + body[i + 1] + 192, i + 2];
      else [len, pos] = [body.readUInt32BE(i + 1), i + 5];
      if (len < 1 || pos + len > end) break;
      out.push({ at: i, len, typeAt: pos });
      i = pos + len;
    }
  }
  return out;
}

const SIG_TYPES = [0x00, 0x01, 0x10, 0x13, 0x18, 0x19, 0x1f, 0x20, 0x28, 0x30, 0x40, 0x50, 0xff];
const ALGORITHMS = [1, 3, 16, 17, 18, 19, 22, 25, 27, 28, 99];
const SUBPACKET_TYPES = [2, 3, 9, 12, 16, 20, 25, 27, 29, 31, 32, 33, 34, 35, 37, 38, 39, 100, 127];

/** Edit inside one packet (in place on a copy); returns a label. */
function editPacket(p, rng) {
  const b = p.body;
  const ops = [];
  if (p.tag === 2 && b.length > 8) {
    const subs = subpackets(b);
    ops.push(
      () => ((b[0] = rng.pick([3, 5, 6, 255])), 'sig version'),
      () => ((b[1] = rng.pick(SIG_TYPES)), 'sig type'),
      () => ((b[2] = rng.pick(ALGORITHMS)), 'sig algorithm'),
      () => ((b[3] = rng.pick([1, 2, 3, 8, 10, 11, 99])), 'hash algorithm'),
      () => (b.writeUInt16BE(rng.int(b.length + 8), 4), 'hashed length'),
      () => ((b[b.length - 1 - rng.int(Math.min(40, b.length))] ^= 1 << rng.int(8)), 'signature value bit'),
      () => ((p.body = b.subarray(0, b.length - 1 - rng.int(10))), 'signature value truncated'),
      () => ((p.body = Buffer.concat([b, Buffer.alloc(1 + rng.int(4), rng.int(256))])), 'signature value extended'),
    );
    if (subs.length) {
      ops.push(
        () => ((b[rng.pick(subs).typeAt] ^= 0x80), 'critical bit'),
        () => {
          const s = rng.pick(subs);
          b[s.typeAt] = (b[s.typeAt] & 0x80) | rng.pick(SUBPACKET_TYPES);
          return 'subpacket type';
        },
        () => {
          const s = rng.pick(subs);
          b[s.typeAt + 1 + rng.int(Math.max(1, s.len - 1))] ^= 1 << rng.int(8);
          return 'subpacket body bit';
        },
        () => ((b[rng.pick(subs).at] = rng.int(256)), 'subpacket length'),
      );
    }
  } else if ((p.tag === 6 || p.tag === 14) && b.length > 6) {
    ops.push(
      () => ((b[0] = rng.pick([2, 3, 5, 6])), 'key version'),
      () => ((b[5] = rng.pick(ALGORITHMS)), 'key algorithm'),
      () => ((b[1 + rng.int(4)] ^= 1 << rng.int(8)), 'key creation time'),
      () => ((b[6 + rng.int(b.length - 6)] ^= 1 << rng.int(8)), 'key material bit'),
    );
  } else if (b.length > 0) {
    ops.push(() => ((b[rng.int(b.length)] ^= 1 << rng.int(8)), 'byte'));
  }
  if (!ops.length) return 'nothing';
  return rng.pick(ops)();
}

/**
 * Mutate a packet list with 1-3 operations; `pool` holds packets borrowed
 * from elsewhere (other keys, revocations, junk). Returns { packets, ops }.
 */
export function mutatePackets(packets, pool, rng) {
  let list = packets.map((p) => ({ tag: p.tag, body: Buffer.from(p.body) }));
  const ops = [];
  const n = 1 + rng.int(3);
  for (let k = 0; k < n; k++) {
    const i = list.length ? rng.int(list.length) : 0;
    const kind = rng.int(8);
    if (kind === 0 && list.length > 1) {
      list.splice(i, 1);
      ops.push(`drop ${i}`);
    } else if (kind === 1 && list.length) {
      list.splice(i, 0, { tag: list[i].tag, body: Buffer.from(list[i].body) });
      ops.push(`duplicate ${i}`);
    } else if (kind === 2 && list.length > 1) {
      const j = rng.int(list.length);
      [list[i], list[j]] = [list[j], list[i]];
      ops.push(`swap ${i} ${j}`);
    } else if (kind === 3 && pool.length) {
      const p = rng.pick(pool);
      list.splice(rng.int(list.length + 1), 0, { tag: p.tag, body: Buffer.from(p.body) });
      ops.push(`insert ${p.label}`);
    } else if (kind === 4 && list.length > 1) {
      const [p] = list.splice(i, 1);
      list.push(p);
      ops.push(`move ${i} to the end`);
    } else if (kind === 5 && list.length) {
      list[i].tag = rng.pick([2, 5, 6, 7, 10, 12, 13, 14, 17, 21, 40, 60]);
      ops.push(`retag ${i}`);
    } else if (list.length) {
      ops.push(`edit ${i}: ${editPacket(list[i], rng)}`);
    }
  }
  if (rng.chance(0.03)) {
    list = list.slice(0, rng.int(list.length + 1));
    ops.push('cut the list');
  }
  return { packets: list, ops };
}
