import { ErpsServerOptions } from 'nestjs-erps';
import { startCalcServer } from './apps';
import { CalcController } from './calc.controller';
import { FeaturesController, UniverseService } from './features.controller';

/** The calc server plus the push / headers / universe / guard / compression handlers. */
export function startFeaturesServer(options: Partial<ErpsServerOptions> = {}) {
  return startCalcServer(options, { controllers: [CalcController, FeaturesController], providers: [UniverseService] });
}
