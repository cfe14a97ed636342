set terminal pngcairo size 1000,650 font 'Sans,10'
set output 'docs/plots/zeroshot/ppl_vs_bits_ref-llama.png'
set title 'Perplexity on test against true storage bits per weight (ref-llama)'
set xlabel 'true bits per weight (everything stored for the compressed layers)'
set ylabel 'perplexity, test split, gptq protocol'
set grid
set key outside right
set bmargin 7
set arrow from graph 0, first 58.39790121296593 to graph 1, first 58.39790121296593 nohead dt 2 lc rgb '#555555'
set label 'FP 58.40' at graph 0.01, first 58.39790121296593 offset 0,0.6 font 'Sans,8'
set yrange [56.645964176576946:*]
plot 'docs/plots/zeroshot/ppl_vs_bits_ref-llama.dat' index 0 using 1:2 with linespoints pt 4 ps 1.3 lc rgb '#1f77b4' title 'RTN', '' index 0 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#1f77b4' notitle, 'docs/plots/zeroshot/ppl_vs_bits_ref-llama.dat' index 1 using 1:2 with linespoints pt 6 ps 1.3 lc rgb '#ff7f0e' title 'GPTQ', '' index 1 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#ff7f0e' notitle, 'docs/plots/zeroshot/ppl_vs_bits_ref-llama.dat' index 2 using 1:2 with linespoints pt 8 ps 1.3 lc rgb '#2ca02c' title 'BiLLM', '' index 2 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#2ca02c' notitle, 'docs/plots/zeroshot/ppl_vs_bits_ref-llama.dat' index 3 using 1:2 with linespoints pt 10 ps 1.3 lc rgb '#d62728' title 'ARB-LLM', '' index 3 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#d62728' notitle, 'docs/plots/zeroshot/ppl_vs_bits_ref-llama.dat' index 4 using 1:2 with linespoints pt 12 ps 1.3 lc rgb '#9467bd' title 'STBLLM', '' index 4 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#9467bd' notitle, 'docs/plots/zeroshot/ppl_vs_bits_ref-llama.dat' index 5 using 1:2 with linespoints pt 4 ps 1.3 lc rgb '#8c564b' title 'PBS2P', '' index 5 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#8c564b' notitle
