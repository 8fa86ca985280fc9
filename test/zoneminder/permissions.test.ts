import { describe, expect, it } from 'vitest';
import { canAccess, canView, groupMonitorIds, withRoleFallback, type AccessRules, type GroupGrant, type ObjectPermission } from '../../shared/zoneminder/permissions.js';

const grant = (groupId: number, permission: ObjectPermission, monitors: number[]): GroupGrant => ({ groupId, permission, monitorIds: new Set(monitors) });

function rules(over: Partial<AccessRules> = {}): AccessRules {
  return {
    stream: 'View',
    monitorsLevel: 'View',
    user: { monitors: new Map(), groups: [] },
    role: null,
    ...over,
  };
}

describe('ZoneMinder live-view rule (pure)', () => {
  it('needs Stream >= View whatever the monitor rules say', () => {
    const r = rules({ stream: 'None', user: { monitors: new Map([[1, 'Edit']]), groups: [] } });
    expect(canAccess(r, 1)).toBe(true);
    expect(canView(r, 1)).toBe(false);
  });

  it('1. a Monitors_Permissions row decides first: None denies, View/Edit allow, Inherit goes on', () => {
    const r = rules({ monitorsLevel: 'None', user: { monitors: new Map<number, ObjectPermission>([[1, 'View'], [2, 'Edit'], [3, 'None'], [4, 'Inherit']]), groups: [grant(9, 'View', [3, 4])] } });
    expect([1, 2, 3, 4].map((m) => canView(r, m))).toEqual([true, true, false, true]);
  });

  it('2. group rows: any None denies, otherwise any View/Edit allows (PHP visibleMonitor)', () => {
    const r = rules({ monitorsLevel: 'None', user: { monitors: new Map(), groups: [grant(1, 'View', [1, 2]), grant(2, 'None', [2]), grant(3, 'Inherit', [3]), grant(4, 'Edit', [4])] } });
    expect([1, 2, 3, 4].map((m) => canView(r, m))).toEqual([true, false, false, true]);
  });

  it('3. the role\'s monitor rows, then its group rows, when the user\'s own rows do not decide', () => {
    const r = rules({
      monitorsLevel: 'View',
      user: { monitors: new Map([[1, 'Inherit']]), groups: [] },
      role: { monitors: new Map<number, ObjectPermission>([[1, 'None'], [2, 'View']]), groups: [grant(5, 'None', [3]), grant(6, 'View', [2, 3])] },
    });
    expect([1, 2, 3, 4].map((m) => canView(r, m))).toEqual([false, true, false, true]);
  });

  it('the user\'s own rows win over the role\'s', () => {
    const r = rules({ user: { monitors: new Map([[1, 'View']]), groups: [] }, role: { monitors: new Map([[1, 'None']]), groups: [] } });
    expect(canView(r, 1)).toBe(true);
  });

  it('4. otherwise the base Monitors enum: anything but None allows', () => {
    for (const level of ['View', 'Edit', 'Create'] as const) expect(canView(rules({ monitorsLevel: level }), 7)).toBe(true);
    expect(canView(rules({ monitorsLevel: 'None' }), 7)).toBe(false);
  });

  it('base Stream and Monitors fall back to the role\'s where the user\'s are None', () => {
    expect(withRoleFallback('None', 'View')).toBe('View');
    expect(withRoleFallback('View', 'None')).toBe('View');
    expect(withRoleFallback('None', undefined)).toBe('None');
  });
});

describe('group membership', () => {
  const groups = [
    { id: 1, parentId: null },
    { id: 2, parentId: 1 },
    { id: 3, parentId: 2 },
    { id: 4, parentId: null },
  ];
  const members = [
    { groupId: 1, monitorId: 10 },
    { groupId: 2, monitorId: 20 },
    { groupId: 3, monitorId: 30 },
    { groupId: 4, monitorId: 40 },
  ];

  it('includes the monitors of every descendant group', () => {
    const m = groupMonitorIds(groups, members, [1, 2, 4]);
    expect([...m.get(1)!].sort()).toEqual([10, 20, 30]);
    expect([...m.get(2)!].sort()).toEqual([20, 30]);
    expect([...m.get(4)!]).toEqual([40]);
  });

  it('survives a ParentId cycle', () => {
    const cyclic = [{ id: 1, parentId: 2 }, { id: 2, parentId: 1 }];
    const m = groupMonitorIds(cyclic, [{ groupId: 2, monitorId: 5 }], [1]);
    expect([...m.get(1)!]).toEqual([5]);
  });
});
