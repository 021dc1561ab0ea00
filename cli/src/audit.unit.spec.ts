import { describe, expect, it } from 'vitest';
import { csvCell, csvLine, parseAuditArgs, UsageError } from './audit';

describe('audit CSV', () => {
  it('neutralizes cells a spreadsheet would run as a formula', () => {
    for (const bad of ['=HYPERLINK("http://evil.example")', '+1+1', '-2+3', '@SUM(A1)', '\tcmd', '\rcmd']) {
      const cell = csvCell(bad);
      expect(cell.replace(/^"/, '').startsWith("'")).toBe(true);
    }
    expect(csvCell('=1+1')).toBe("'=1+1");
    expect(csvCell('=a,b')).toBe(`"'=a,b"`);
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell(12)).toBe('12');
    expect(csvCell({ name: '=x' })).toBe('"{""name"":""=x""}"');
  });

  it('applies to every column of a record', () => {
    const line = csvLine({ position: 1, at: '2026-11-01T00:00:00.000Z', streamName: 'user-t.u', revision: 0, type: 'UserRegistered', actor: '=actor', requestId: '-r', prevHash: null, data: {} });
    expect(line).toBe("1,2026-11-01T00:00:00.000Z,user-t.u,0,UserRegistered,'=actor,'-r,,{}\n");
  });
});

describe('audit arguments', () => {
  it('takes the checkpoint and verify --against options', () => {
    expect(parseAuditArgs(['checkpoint', '--out', 'c.json'])).toMatchObject({ command: 'checkpoint', out: 'c.json' });
    expect(parseAuditArgs(['verify', '--against', 'c.json', '--key', 'pub.pem'])).toMatchObject({ command: 'verify', against: 'c.json', key: 'pub.pem' });
    expect(() => parseAuditArgs(['checkpoint', '--tenant', 't'])).toThrow(UsageError);
    expect(() => parseAuditArgs(['export', '--tenant', 't', '--against', 'x'])).toThrow(/unknown option --against/);
  });
});
