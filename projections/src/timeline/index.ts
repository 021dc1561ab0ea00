export * from './document';
export * from './evolve';
export * from './queries';
export * from './view';
