// The small lab the real captures of test/fixtures are taken from (5 orphaned FIN-WAIT-1, 3 idle
// pairs, 4 TIME-WAIT, in a fresh network namespace of its own), with the lab's own measurement
// around the capture: a capture during which the lab moved is refused.

import { Lab, createNetns, deleteNetns, type LabFigures } from './lab.ts';

export async function captureLab<T>(take: (netns: string) => T): Promise<{ taken: T; figures: LabFigures }> {
  const ns = `tcpstate-capture-${process.pid}`;
  await createNetns(ns);
  const lab = await Lab.start({ finWait1: 5, established: 3, timeWait: 4, netns: ns });
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const before = await lab.measure();
    const taken = take(ns);
    const figures = await lab.measure();
    if (JSON.stringify(before) !== JSON.stringify(figures)) throw new Error('lab moved during capture');
    return { taken, figures };
  } finally {
    await lab.stop();
    await deleteNetns(ns);
  }
}
