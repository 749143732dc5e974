import { describe, expect, it } from 'vitest';
import { newClusterId } from './services.ts';

describe('newClusterId', () => {
  it('is 16 bytes as URL-safe base64 without padding, like kafka-storage random-uuid', () => {
    const id = newClusterId();
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Buffer.from(id, 'base64url')).toHaveLength(16);
  });

  it("never starts with '-' (the storage tool would take it for an option): it draws again", () => {
    // 0xf8 encodes as '-' in the first base64url character; the second draw does not.
    const draws = [Buffer.alloc(16, 0xf8), Buffer.alloc(16, 0x10)];
    const id = newClusterId(() => draws.shift() as Buffer);
    expect(draws).toHaveLength(0);
    expect(id.startsWith('-')).toBe(false);
    expect(Buffer.alloc(16, 0xf8).toString('base64url').startsWith('-')).toBe(true);
  });
});
