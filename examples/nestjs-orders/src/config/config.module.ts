import { ConfigModule } from '@nestjs/config';
import { appConfig } from './app.config';

/** Settings from the environment only (no .env file), validated at start. */
export const AppConfigModule = ConfigModule.forRoot({
  isGlobal: true,
  ignoreEnvFile: true,
  load: [appConfig],
});
