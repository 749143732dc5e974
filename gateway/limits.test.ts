import { describe, expect, it } from 'vitest';
import { GATEWAY_DEFAULTS, parseGatewayLimits } from './limits.ts';

describe('gateway limits', () => {
  it('fills defaults and keeps what is given', () => {
    const limits = parseGatewayLimits({ skewMs: 60_000 });
    expect(limits.skewMs).toBe(60_000);
    expect(limits.maxEventBytes).toBe(GATEWAY_DEFAULTS.maxEventBytes);
    expect(limits.replayWindow).toBe(64);
  });

  it('refuses unknown keys, bad values and impossible combinations with CONFIG_INVALID naming the field', () => {
    const refused = (input: unknown) => {
      try {
        parseGatewayLimits(input);
        return null;
      } catch (error) {
        return { code: (error as { code?: string }).code, message: (error as Error).message };
      }
    };
    expect(refused({ skewMS: 1 })).toMatchObject({ code: 'CONFIG_INVALID' });
    expect(refused({ maxEventBytes: 0 })).toMatchObject({ code: 'CONFIG_INVALID', message: /maxEventBytes/ });
    expect(refused({ maxEventBytes: 70_000 })).toMatchObject({ message: /maxEventBytes/ });
    expect(refused({ replayWindow: 128 })).toMatchObject({ message: /replayWindow/ });
    expect(refused({ maxEventsPerRequest: 2_000, deviceBurst: 1_000 })).toMatchObject({
      message: /maxEventsPerRequest must not exceed deviceBurst/,
    });
    expect(refused({ maxBodyBytes: 1_000, maxEventBytes: 2_000 })).toMatchObject({
      message: /maxEventBytes must not exceed maxBodyBytes/,
    });
  });
});
