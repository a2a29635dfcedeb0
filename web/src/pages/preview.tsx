import type { Schemas } from '../api';
import { usd } from '../format';

type Rule = Schemas['RuleEvaluation'];

const VERDICT: Record<string, { text: string; cls: string }> = {
  pass: { text: 'Passes: no rule stops it.', cls: 'ok' },
  Allowed: { text: 'Passes: no rule stops it.', cls: 'ok' },
  approval: { text: 'Needs approval: a compliance officer decides.', cls: 'warn' },
  RequiresApproval: { text: 'Needs approval: a compliance officer decides.', cls: 'warn' },
  block: { text: 'Blocked.', cls: 'bad' },
  Blocked: { text: 'Blocked.', cls: 'bad' },
};

function amount(rule: Rule, v: string | null | undefined): string {
  if (v === null || v === undefined) return '—';
  return rule.rule === 'TransactionCountVelocity' ? v : usd(v);
}

/** A preview's verdict, which rules decide it, and every rule's room. */
export function PreviewResult(props: {
  verdict: string;
  stoppedBy: string[];
  rules: Rule[];
  unevaluated: string[];
  valueUsd?: string | null;
  extra?: preact.ComponentChildren;
}) {
  const v = VERDICT[props.verdict] ?? { text: props.verdict, cls: '' };
  const stopping = props.rules.filter((r) => props.stoppedBy.includes(r.policyId));
  return (
    <div class={`preview ${v.cls}`} aria-live="polite" data-testid="preview">
      <p class="verdict">
        <strong>{v.text}</strong>
        {stopping.length > 0 && <> By: {stopping.map((r) => `${r.policyName} (${r.rule})`).join(', ')}.</>}
      </p>
      {props.valueUsd !== undefined && <p>Value: {usd(props.valueUsd)}</p>}
      {props.extra}
      {props.rules.length > 0 && (
        <table>
          <caption>Rules</caption>
          <thead>
            <tr>
              <th scope="col">Rule</th>
              <th scope="col" class="num">Limit</th>
              <th scope="col" class="num">Used</th>
              <th scope="col" class="num">Left before</th>
              <th scope="col" class="num">Left after</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {props.rules.map((r) => (
              <tr key={r.policyId}>
                <td>
                  {r.policyName}
                  <div class="muted">{r.rule}</div>
                </td>
                <td class="num">{amount(r, r.limit)}</td>
                <td class="num">{amount(r, r.used)}</td>
                <td class="num">{amount(r, r.headroom)}</td>
                <td class="num">{amount(r, r.headroomAfter)}</td>
                <td>{r.triggered === true ? (r.action === 'Block' ? 'blocks' : 'needs approval') : r.triggered === false ? 'passes' : 'not evaluated'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {props.unevaluated.length > 0 && <p class="muted">Not evaluated here (Dfns may still hold it): {props.unevaluated.join(', ')}</p>}
    </div>
  );
}
