/**
 * ZoneMinder's live-view rule, as a pure function of rules loaded once per
 * user: allowed iff `Stream >= View` and `canAccess(monitor)`, where
 * canAccess takes the first decisive answer of
 *   1. the user's Monitors_Permissions row (None denies, View/Edit allow, Inherit goes on);
 *   2. the user's Groups_Permissions over groups containing the monitor, child groups included;
 *   3. with a role: the role's Role_Monitors_Permissions, then Role_Groups_Permissions, same logic;
 *   4. otherwise the base `Monitors` enum != 'None'.
 * Stream and Monitors fall back to the role's value where the user's is 'None'.
 *
 * Step 2 is where ZoneMinder's C++ (first non-Inherit group row wins, in row
 * order) and PHP `visibleMonitor` (any None denies, then any View/Edit
 * allows) differ. zmcast follows PHP: it never grants what either would
 * refuse, and does not depend on unordered row order.
 */
export type ObjectPermission = 'Inherit' | 'None' | 'View' | 'Edit';
export type StreamLevel = 'None' | 'View';
export type MonitorsLevel = 'None' | 'View' | 'Edit' | 'Create';

export interface GroupGrant {
  groupId: number;
  permission: ObjectPermission;
  /** Monitors of the group and of all its descendant groups. */
  monitorIds: ReadonlySet<number>;
}

export interface PermissionSet {
  monitors: ReadonlyMap<number, ObjectPermission>;
  groups: readonly GroupGrant[];
}

export interface AccessRules {
  /** Effective, after the role fallback. */
  stream: StreamLevel;
  monitorsLevel: MonitorsLevel;
  user: PermissionSet;
  role: PermissionSet | null;
}

type Decision = 'allow' | 'deny' | undefined;

function decidePermission(p: ObjectPermission | undefined): Decision {
  if (p === 'None') return 'deny';
  if (p === 'View' || p === 'Edit') return 'allow';
  return undefined;
}

function decideGroups(groups: readonly GroupGrant[], monitorId: number): Decision {
  let allow = false;
  for (const g of groups) {
    if (!g.monitorIds.has(monitorId)) continue;
    if (g.permission === 'None') return 'deny';
    if (g.permission === 'View' || g.permission === 'Edit') allow = true;
  }
  return allow ? 'allow' : undefined;
}

function decideSet(set: PermissionSet, monitorId: number): Decision {
  return decidePermission(set.monitors.get(monitorId)) ?? decideGroups(set.groups, monitorId);
}

export function canAccess(rules: AccessRules, monitorId: number): boolean {
  const d = decideSet(rules.user, monitorId) ?? (rules.role ? decideSet(rules.role, monitorId) : undefined);
  if (d !== undefined) return d === 'allow';
  return rules.monitorsLevel !== 'None';
}

export function canStream(rules: AccessRules): boolean {
  return rules.stream !== 'None';
}

/** zms `ValidateAccess` for a live monitor. */
export function canView(rules: AccessRules, monitorId: number): boolean {
  return canStream(rules) && canAccess(rules, monitorId);
}

/** `loadRoleBasePermissions`: the role's value fills a user field that is 'None'. */
export function withRoleFallback<T extends string>(userValue: T, roleValue: T | undefined): T {
  return userValue === 'None' && roleValue !== undefined ? roleValue : userValue;
}

/**
 * Each group's monitors including those of all descendants (`Group::MonitorIds`),
 * for the groups asked about. Cycles in ParentId, which the schema's foreign
 * key cannot prevent, end the walk instead of looping.
 */
export function groupMonitorIds(
  groups: readonly { id: number; parentId: number | null }[],
  members: readonly { groupId: number; monitorId: number }[],
  wanted: Iterable<number>,
): Map<number, Set<number>> {
  const children = new Map<number, number[]>();
  for (const g of groups) {
    if (g.parentId === null) continue;
    const list = children.get(g.parentId) ?? [];
    list.push(g.id);
    children.set(g.parentId, list);
  }
  const direct = new Map<number, number[]>();
  for (const m of members) {
    const list = direct.get(m.groupId) ?? [];
    list.push(m.monitorId);
    direct.set(m.groupId, list);
  }
  const out = new Map<number, Set<number>>();
  for (const root of wanted) {
    if (out.has(root)) continue;
    const ids = new Set<number>();
    const seen = new Set<number>();
    const stack = [root];
    while (stack.length) {
      const g = stack.pop()!;
      if (seen.has(g)) continue;
      seen.add(g);
      for (const mid of direct.get(g) ?? []) ids.add(mid);
      for (const c of children.get(g) ?? []) stack.push(c);
    }
    out.set(root, ids);
  }
  return out;
}
