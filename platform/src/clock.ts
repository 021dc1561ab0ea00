export type Clock = Readonly<{ now: () => Date }>;

export const systemClock: Clock = { now: () => new Date() };

/** A clock tests move by hand. */
export const manualClock = (start: Date): Clock & { set(t: Date): void; advance(ms: number): void } => {
  let t = start.getTime();
  return {
    now: () => new Date(t),
    set: (d: Date) => {
      t = d.getTime();
    },
    advance: (ms: number) => {
      t += ms;
    },
  };
};
