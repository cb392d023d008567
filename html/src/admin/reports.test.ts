import { describe, expect, it } from 'vitest';
import { kindLabel, reportExcerpt, reportSections, reportStatusLabel } from './reports';

describe('reports', () => {
  it('lays out an inaccuracy report', () => {
    const sections = reportSections({
      fields: {
        avatar_response: 'The APR is fixed.',
        user_input: 'Is the APR fixed?',
        conversation_context: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
        ],
        user_note: '',
      },
    });
    expect(sections).toEqual([
      { label: 'What the trainee said', text: 'Is the APR fixed?' },
      { label: "Adam's answer", text: 'The APR is fixed.' },
      {
        label: 'Conversation',
        turns: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
        ],
      },
    ]);
  });

  it('keeps a string context and unknown fields', () => {
    const sections = reportSections({
      fields: { user_question: 'Q', conversation_history: [], conversation_context: 'earlier text', extra_thing: { a: 1 } },
    });
    expect(sections).toEqual([
      { label: 'Question', text: 'Q' },
      { label: 'Conversation', text: 'earlier text' },
      { label: 'extra thing', text: '{\n  "a": 1\n}' },
    ]);
  });

  it('makes a short excerpt', () => {
    expect(reportExcerpt({ fields: { user_input: '  a\n b ' } })).toBe('a b');
    expect(reportExcerpt({ fields: { user_question: 'x'.repeat(200) } }, 10)).toBe(`${'x'.repeat(9)}…`);
    expect(reportExcerpt({ fields: {} })).toBe('');
  });

  it('labels kinds and statuses, passing unknown ones through', () => {
    expect(kindLabel('inaccuracy')).toBe('Inaccurate answer');
    expect(kindLabel('other')).toBe('other');
    expect(reportStatusLabel('dismissed')).toBe('Dismissed');
  });
});
