export * from './text';
export * from './ids';
export * from './devices';
export * from './tenancy';
export * from './integrations';
