import { DynamicModule, Module } from '@nestjs/common';
import { ClientsModule } from '@nestjs/microservices';
import { ErpsClient, ErpsClientOptions } from 'nestjs-erps';
import { CalcController } from './calc.controller';
import { CALC, CalcClientService } from './calc-client.service';

/** The server app: just the controller. */
@Module({ controllers: [CalcController] })
export class CalcServerModule {}

/** The client app: ErpsClient registered through ClientsModule, as any Nest client. */
@Module({})
export class CalcClientModule {
  static register(options: ErpsClientOptions): DynamicModule {
    return {
      module: CalcClientModule,
      imports: [ClientsModule.register([{ name: CALC, customClass: ErpsClient, options }])],
      providers: [CalcClientService],
      exports: [CalcClientService],
    };
  }
}
