// Project-level build script of the DevEco project that packs the callpush HAR.
import { appTasks } from '@ohos/hvigor-ohos-plugin';

export default {
  system: appTasks,
  plugins: []
};
