import { useRef, useState } from 'react';
import type { FormEvent } from 'react';
import { kbQuery } from '../api/admin';
import type { QueryAnswer } from '../api/admin';
import { plural, topicLabel } from '../admin/format';
import { checkQueryForm, errorMessage, fieldErrorsFrom, hasErrors, QUERY_FIELDS } from '../admin/validation';
import type { FieldErrors, QueryField, QueryForm } from '../admin/validation';
import { buttonClass } from './buttons';
import { SelectField, TextAreaField, TextField } from './FormField';
import { Badge, ErrorNotice } from './Notice';
import { Panel } from './PageHeader';

/** Ask the knowledge base a question and see what retrieval finds. */
export function KbQueryTester({ dealershipId, topics }: { dealershipId: number; topics: readonly string[] }) {
  const [form, setForm] = useState<QueryForm>({ query: '', top_k: '5', topic: '', min_score: '' });
  const [errors, setErrors] = useState<FieldErrors<QueryField>>({});
  const [error, setError] = useState<string | null>(null);
  const [other, setOther] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<QueryAnswer | null>(null);
  const ctrl = useRef<AbortController | null>(null);

  const set = (k: keyof QueryForm) => (v: string) => setForm((f) => ({ ...f, [k]: v }));

  async function submit(e: FormEvent) {
    e.preventDefault();
    const found = checkQueryForm(form);
    setErrors(found);
    setError(null);
    setOther([]);
    if (hasErrors(found)) return;
    ctrl.current?.abort();
    const c = new AbortController();
    ctrl.current = c;
    setBusy(true);
    try {
      const out = await kbQuery(
        dealershipId,
        {
          query: form.query,
          top_k: Number(form.top_k),
          topics: form.topic ? [form.topic] : undefined,
          min_score: form.min_score.trim() === '' ? undefined : Number(form.min_score),
        },
        c.signal,
      );
      setAnswer(out);
    } catch (err) {
      if (c.signal.aborted) return;
      const mapped = fieldErrorsFrom(err, QUERY_FIELDS);
      setErrors(mapped.fields);
      setOther(mapped.other);
      setError(errorMessage(err));
      setAnswer(null);
    } finally {
      if (!c.signal.aborted) setBusy(false);
    }
  }

  return (
    <Panel title="Test a question" testId="kb-query">
      <form onSubmit={submit} noValidate className="space-y-4" data-testid="query-form" aria-busy={busy}>
        <TextAreaField
          label="Question"
          rows={3}
          value={form.query}
          onValue={set('query')}
          error={errors.query}
          hint="Ask as a trainee would; the best matching passages are listed with their scores."
          testId="query-question"
          required
        />
        <div className="grid gap-4 sm:grid-cols-3">
          <TextField
            label="Results (top k)"
            type="number"
            inputMode="numeric"
            min={1}
            max={20}
            value={form.top_k}
            onValue={set('top_k')}
            error={errors.top_k}
            testId="query-top-k"
          />
          <SelectField
            label="Topic"
            value={form.topic}
            onValue={set('topic')}
            options={[{ value: '', label: 'All topics' }, ...topics.map((t) => ({ value: t, label: topicLabel(t) }))]}
            error={errors.topic}
            testId="query-topic"
          />
          <TextField
            label="Minimum score"
            type="number"
            inputMode="decimal"
            min={0}
            max={1}
            step={0.05}
            placeholder="Server default"
            value={form.min_score}
            onValue={set('min_score')}
            error={errors.min_score}
            testId="query-min-score"
          />
        </div>
        <ErrorNotice message={error} details={other} testId="query-error" />
        <button type="submit" className={buttonClass('primary')} disabled={busy} data-testid="query-submit">
          {busy ? 'Searching…' : 'Search'}
        </button>
      </form>

      <div aria-live="polite" className="mt-4">
        {answer && (
          <>
            <p className="text-sm text-slate-600" data-testid="query-count">
              {plural(answer.count, 'result')} for “{answer.query}”
            </p>
            {answer.results.length > 0 && (
              <ol className="mt-3 space-y-3">
                {answer.results.map((r, i) => (
                  <li
                    key={`${r.document_id ?? r.filename}-${i}`}
                    data-testid="query-result"
                    className="rounded-lg p-3 ring-1 ring-slate-200"
                  >
                    <div className="flex flex-wrap items-center gap-2">
                      <span className="font-mono text-sm font-semibold text-brand-800" data-testid="query-result-score">
                        {r.score.toFixed(3)}
                      </span>
                      <span className="sr-only">score,</span>
                      <h3 className="break-all text-sm font-medium text-slate-900" data-testid="query-result-title">
                        {r.filename}
                      </h3>
                      <Badge tone="info">{topicLabel(r.topic)}</Badge>
                    </div>
                    <p
                      className="mt-2 whitespace-pre-wrap break-words text-sm text-slate-700"
                      data-testid="query-result-text"
                    >
                      {r.content}
                    </p>
                  </li>
                ))}
              </ol>
            )}
          </>
        )}
      </div>
    </Panel>
  );
}
