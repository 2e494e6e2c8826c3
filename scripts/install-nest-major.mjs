// Usage: node scripts/install-nest-major.mjs 11
// Installs that major of every @nestjs/* devDependency without saving it (package.json and the lockfile stay on
// the current major; `npm ci` goes back). Taking the list from package.json keeps it complete when one is added:
// npm refuses a mix of majors, e.g. @nestjs/testing 11 beside @nestjs/platform-express 12.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const major = process.argv[2];
if (!/^\d+$/.test(major ?? '')) throw new Error('usage: node scripts/install-nest-major.mjs <major>');
const { devDependencies } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const specs = Object.keys(devDependencies)
  .filter((name) => name.startsWith('@nestjs/'))
  .map((name) => `${name}@^${major}`);
console.log(`installing ${specs.join(' ')}`);
const npm = spawnSync('npm', ['install', '--no-save', '--ignore-scripts', ...specs], { stdio: 'inherit' });
process.exit(npm.status ?? 1);
