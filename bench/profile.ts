/**
 * Summarizes a V8 .cpuprofile (from node --cpu-prof): self time per function, heaviest first, and inclusive time
 * (the function and everything it called), which is what attributes a cost to the code that caused it.
 * Usable on its own: node build/bench/profile.js <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileLine {
  selfMs: number;
  percent: number;
  functionName: string;
  location: string;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return `nestjs-erps${url.slice(dist)}`;
  return url.replace(/^file:\/\//, '').replace(/^.*\/build\//, 'build/');
}

/** Which package a frame belongs to: an npm package, nestjs-erps itself, Node internals, or V8/native. */
function packageOf(url: string): string {
  if (url === '') return '(V8/native: GC, microtasks, program)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (url.includes('/dist/')) return 'nestjs-erps (dist)';
  if (url.startsWith('node:')) return '(node internals)';
  return shortUrl(url);
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  lines: ProfileLine[];
  /** Heaviest by inclusive time (module loading left out); `selfMs` is then the inclusive time. */
  inclusive: ProfileLine[];
  packages: Array<{ name: string; selfMs: number; percentOfBusy: number }>;
}

export function summarizeProfile(path: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, CpuProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  // One name per node, for self and inclusive time alike.
  const functionOf = new Map<number, { key: string; functionName: string; location: string }>();
  for (const node of profile.nodes) {
    const frame = node.callFrame;
    const functionName = frame.functionName || '(anonymous)';
    const location = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '';
    functionOf.set(node.id, { key: `${functionName}@${location}`, functionName, location });
  }
  const inclusiveUs = new Map<string, { us: number; functionName: string; location: string }>();
  const byFunction = new Map<string, { us: number; functionName: string; location: string }>();
  const byPackage = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const url = byId.get(id)!.callFrame.url;
    const fn = functionOf.get(id)!;
    totalUs += us;
    if (fn.functionName === '(idle)') idleUs += us;
    else byPackage.set(packageOf(url), (byPackage.get(packageOf(url)) ?? 0) + us);
    const entry = byFunction.get(fn.key) ?? { us: 0, functionName: fn.functionName, location: fn.location };
    entry.us += us;
    byFunction.set(fn.key, entry);
    // Every function on this sample's stack, once (recursion counts once).
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const caller = functionOf.get(at)!;
      if (seen.has(caller.key)) continue;
      seen.add(caller.key);
      const inclusive = inclusiveUs.get(caller.key) ?? { us: 0, functionName: caller.functionName, location: caller.location };
      inclusive.us += us;
      inclusiveUs.set(caller.key, inclusive);
    }
  }
  const busyUs = totalUs - idleUs;
  const packages = [...byPackage.entries()].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, selfMs: us / 1000, percentOfBusy: (100 * us) / busyUs }));
  const heaviest = (entries: Iterable<{ us: number; functionName: string; location: string }>, keep: (entry: { functionName: string; location: string }) => boolean): ProfileLine[] =>
    [...entries]
      .filter(keep)
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((entry) => ({ selfMs: entry.us / 1000, percent: (100 * entry.us) / busyUs, functionName: entry.functionName, location: entry.location }));
  const lines = heaviest(byFunction.values(), (entry) => entry.functionName !== '(idle)');
  const startUp = /^node:internal\/(modules|main)|^\(root\)$|^\(idle\)$/;
  const inclusive = heaviest(inclusiveUs.values(), (entry) => !startUp.test(entry.location) && !startUp.test(entry.functionName));
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, lines, inclusive, packages };
}

export function profileTable(summary: ProfileSummary): string {
  const out = [
    `Sampled ${summary.totalMs.toFixed(0)} ms of process life (start-up included), idle ${summary.idleMs.toFixed(0)} ms (${((100 * summary.idleMs) / summary.totalMs).toFixed(1)}%); percentages below are of busy time.`,
    '',
    '| self ms | % of busy | package |',
    '|---:|---:|---|',
    ...summary.packages.slice(0, 12).map((p) => `| ${p.selfMs.toFixed(0)} | ${p.percentOfBusy.toFixed(1)} | ${p.name} |`),
  ];
  for (const [heading, lines] of [
    ['self ms', summary.lines],
    ['inclusive ms', summary.inclusive],
  ] as const) {
    out.push('', `| ${heading} | % of busy | function | location |`, '|---:|---:|---|---|');
    for (const line of lines) out.push(`| ${line.selfMs.toFixed(0)} | ${line.percent.toFixed(1)} | \`${line.functionName}\` | ${line.location} |`);
  }
  return out.join('\n');
}

if (require.main === module) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: node build/bench/profile.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(profileTable(summarizeProfile(file, Number(process.argv[3] ?? 25))));
}
