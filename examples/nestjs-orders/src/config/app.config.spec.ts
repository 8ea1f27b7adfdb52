import { appConfig, validateEnv } from './app.config';

describe('configuration', () => {
  it('has defaults for everything', () => {
    const env = validateEnv({});
    expect(env.KAFKA_BROKERS).toBe('localhost:9092');
    expect(env.BILLING_MAX_ATTEMPTS).toBe(3);
    expect(env.PORT).toBe(3000);
  });

  it('converts numbers and treats empty variables as unset', () => {
    const env = validateEnv({ BILLING_MAX_ATTEMPTS: '7', PORT: '' });
    expect(env.BILLING_MAX_ATTEMPTS).toBe(7);
    expect(env.PORT).toBe(3000);
  });

  it.each([
    ['BILLING_MAX_ATTEMPTS', 'three'],
    ['BILLING_MAX_ATTEMPTS', '0'],
    ['PORT', '70000'],
    ['KAFKA_BROKERS', 'a:1,,b:2'],
  ])('refuses %s=%s naming the variable', (name, value) => {
    expect(() => validateEnv({ [name]: value })).toThrow(name);
  });

  it('reads the environment when the application is created, not on import', () => {
    process.env.BILLING_GROUP_ID = 'late';
    try {
      expect(appConfig().billingGroupId).toBe('late');
    } finally {
      delete process.env.BILLING_GROUP_ID;
    }
  });
});
