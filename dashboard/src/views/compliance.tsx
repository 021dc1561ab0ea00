import { useState } from 'preact/hooks';
import { ApiError } from '../api';
import { AuditPage, AuditVerification, type AuditPageResult, type AuditVerificationResult } from '../generated';
import { csvRow } from '../live';
import { Problem, useSession } from '../ui';

const COLUMNS = ['position', 'at', 'streamName', 'revision', 'type', 'actor', 'requestId', 'prevHash', 'data'] as const;

type Format = 'jsonl' | 'csv';

export const ComplianceView = () => {
  const { api, me } = useSession();
  const [report, setReport] = useState<AuditVerificationResult['auditVerification'] | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [exported, setExported] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  const verify = async () => {
    setBusy('verifying');
    setError(null);
    try {
      setReport((await api.request(AuditVerification, {})).auditVerification);
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(String(e), 'ERROR'));
    } finally {
      setBusy(null);
    }
  };

  /** Pages through the replay (auditLog), one part of the file per page, then offers the file. */
  const download = async (format: Format) => {
    setBusy(`exporting ${format}`);
    setError(null);
    setExported(null);
    const parts: string[] = format === 'csv' ? [COLUMNS.join(',') + '\n'] : [];
    let after: string | null = null;
    let count = 0;
    try {
      for (;;) {
        const page: AuditPageResult = await api.request(AuditPage, { after });
        for (const e of page.auditLog.nodes) {
          parts.push(format === 'csv' ? csvRow(COLUMNS.map((c) => e[c])) + '\n' : JSON.stringify({ ...e, data: JSON.parse(e.data) }) + '\n');
        }
        count += page.auditLog.nodes.length;
        setBusy(`exporting ${format}: ${count} events`);
        if (!page.auditLog.pageInfo.hasNextPage) break;
        after = page.auditLog.pageInfo.endCursor;
      }
      const url = URL.createObjectURL(new Blob(parts, { type: format === 'csv' ? 'text/csv' : 'application/x-ndjson' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `audit-${me.tenantId}.${format}`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setExported(`${count} events exported as ${format === 'csv' ? 'CSV' : 'JSON Lines'}`);
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(String(e), 'ERROR'));
    } finally {
      setBusy(null);
    }
  };

  return (
    <section aria-labelledby="compliance-title">
      <h1 id="compliance-title">Compliance</h1>
      <p class="hint">The tenant's log is hash-chained: every event names the hash of the one before it. Keys with the AUDIT_READ scope check and export it.</p>
      <div class="actions">
        <button type="button" onClick={verify} disabled={busy !== null}>Verify the audit chain</button>
        <button type="button" onClick={() => download('jsonl')} disabled={busy !== null}>Export JSON Lines</button>
        <button type="button" onClick={() => download('csv')} disabled={busy !== null}>Export CSV</button>
      </div>
      <p role="status">{busy ?? exported ?? ''}</p>
      <Problem error={error} />
      {report && (
        <p class={`verify ${report.ok ? 'ok' : 'broken'}`} data-ok={String(report.ok)}>
          {report.ok
            ? `Intact: ${report.checked} events checked, up to position ${report.lastPosition}${report.lastAt ? ` (${report.lastAt})` : ''}.`
            : `Broken at position ${report.firstBreak?.position} (${report.firstBreak?.type} in ${report.firstBreak?.streamName}): ${report.firstBreak?.reason}`}
        </p>
      )}
    </section>
  );
};
