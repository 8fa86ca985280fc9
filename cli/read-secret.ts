/**
 * Reads one secret from stdin without it ever being an argument (argv is
 * visible to every user in `ps`). On a terminal it prompts on stderr and
 * turns echo off; from a pipe it reads everything and drops one final newline.
 */
export async function readSecret(prompt: string, stdin: NodeJS.ReadStream = process.stdin): Promise<string> {
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = '';
      const onData = (s: string) => {
        for (const c of s) {
          if (c === '\r' || c === '\n' || c === '\u0004') {
            stdin.off('data', onData);
            resolve(typed);
            return;
          }
          if (c === '\u0003') {
            stdin.off('data', onData);
            reject(new Error('interrupted'));
            return;
          }
          if (c === '\u007f' || c === '\b') typed = [...typed].slice(0, -1).join('');
          else typed += c;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}
