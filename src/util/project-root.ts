/** The project root (holds package.json, presets/, data/), found from this file in src/ or dist/src/. */
import * as fs from 'node:fs';
import * as path from 'node:path';

export function projectRoot(): string {
  let d = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    const up = path.dirname(d);
    if (up === d) return process.cwd();
    d = up;
  }
}
