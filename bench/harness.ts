// A tiny benchmark harness: warm up, then run batches until `ms` of wall time, report µs/op.
export interface Result {
  name: string
  usPerOp: number
  ops: number
}

export function measure(name: string, fn: () => unknown, ms = 400): Result {
  let sink: unknown
  for (let i = 0; i < 200; i++) sink = fn()
  let batch = 1
  for (;;) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < batch; i++) sink = fn()
    const dt = Number(process.hrtime.bigint() - t0) / 1e6
    if (dt > 20) break
    batch *= 2
  }
  let ops = 0
  const start = process.hrtime.bigint()
  let elapsed = 0
  while (elapsed < ms) {
    for (let i = 0; i < batch; i++) sink = fn()
    ops += batch
    elapsed = Number(process.hrtime.bigint() - start) / 1e6
  }
  if (sink === Symbol.for('never')) console.log(sink)
  return { name, usPerOp: (elapsed * 1000) / ops, ops }
}

export function report(results: Result[]): void {
  const w = Math.max(...results.map((r) => r.name.length))
  for (const r of results) console.log(`  ${r.name.padEnd(w)}  ${r.usPerOp.toFixed(3).padStart(10)} µs/op  (${r.ops} ops)`)
}

export function ratio(label: string, a: Result, b: Result): number {
  const x = a.usPerOp / b.usPerOp
  console.log(`  ${label}: ${x.toFixed(2)}x`)
  return x
}
