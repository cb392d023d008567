import { describe, expect, it } from 'vitest';
import { formatDateTime, percent, plural, topicLabel } from './format';

describe('format helpers', () => {
  it('labels topics', () => {
    expect(topicLabel('objection_handling')).toBe('Objection handling');
    expect(topicLabel('books')).toBe('Books');
  });
  it('formats percentages within 0–100', () => {
    expect(percent(0.456)).toBe('46%');
    expect(percent(2)).toBe('100%');
    expect(percent(-1)).toBe('0%');
  });
  it('pluralises', () => {
    expect(plural(1, 'file')).toBe('1 file');
    expect(plural(3, 'file')).toBe('3 files');
    expect(plural(0, 'match', 'matches')).toBe('0 matches');
  });
  it('keeps unparsable dates and marks missing ones', () => {
    expect(formatDateTime(null)).toBe('—');
    expect(formatDateTime('not a date')).toBe('not a date');
    expect(formatDateTime('2025-03-01T10:00:00Z')).not.toBe('2025-03-01T10:00:00Z');
  });
});
