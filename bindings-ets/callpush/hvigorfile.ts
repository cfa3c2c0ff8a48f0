// Build script of the HAR module: hvigor's standard HAR tasks (`hvigorw assembleHar`).
import { harTasks } from '@ohos/hvigor-ohos-plugin';

export default {
  system: harTasks,
  plugins: []
};
