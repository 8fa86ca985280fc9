/**
 * Where a client resumes events from, and the filter that keeps a resume
 * from showing an event twice.
 */
import { describe, expect, it } from 'vitest';
import { compareEventIds, EventResume } from '../../client/event-resume.js';

describe('EventResume', () => {
  it('orders ids numerically, not as text', () => {
    expect(compareEventIds('9-0', '10-0')).toBe(-1);
    expect(compareEventIds('1700000000000-10', '1700000000000-9')).toBe(1);
    expect(compareEventIds('1700000000000-3', '1700000000000-3')).toBe(0);
  });

  it('lets each event through once, in id order, per monitor, and resumes after the last', () => {
    const r = new EventResume();
    expect(r.resumePoint(1)).toEqual({});
    expect(r.accept(1, '100-0', 'a')).toBe(true);
    expect(r.accept(1, '100-1', 'a')).toBe(true);
    expect(r.accept(1, '100-1', 'a')).toBe(false); // the replay after a reconnect
    expect(r.accept(1, '99-5', 'a')).toBe(false);
    expect(r.accept(2, '50-0', 'a')).toBe(true); // another monitor has its own
    expect(r.resumePoint(1)).toEqual({ since: '100-1', epoch: 'a' });
    expect(r.resumePoint(2)).toEqual({ since: '50-0', epoch: 'a' });
  });

  it('takes a new epoch as a new history, even with lower ids', () => {
    const r = new EventResume();
    r.accept(1, '100-0', 'a');
    expect(r.accept(1, '40-0', 'b')).toBe(true);
    expect(r.accept(1, '40-0', 'b')).toBe(false);
    expect(r.resumePoint(1)).toEqual({ since: '40-0', epoch: 'b' });
  });

  it('starts from an id the caller kept, and orders by id alone with an edge that sends no epoch', () => {
    const r = new EventResume();
    r.startFrom(1, '100-0');
    expect(r.resumePoint(1)).toEqual({ since: '100-0' });
    expect(r.accept(1, '100-0', undefined)).toBe(false);
    expect(r.accept(1, '100-1', undefined)).toBe(true);
    expect(r.accept(1, '100-2', 'a')).toBe(true); // first epoch seen: still the same ids
    expect(r.accept(1, '100-1', 'a')).toBe(false);
    expect(r.resumePoint(1)).toEqual({ since: '100-2', epoch: 'a' });
  });
});
