set terminal pngcairo size 1000,650 font 'Sans,10'
set output 'docs/plots/zeroshot/ppl_vs_bits_ref-opt.png'
set title 'Perplexity on test against true storage bits per weight (ref-opt)'
set xlabel 'true bits per weight (everything stored for the compressed layers)'
set ylabel 'perplexity, test split, gptq protocol'
set grid
set key outside right
set bmargin 7
set arrow from graph 0, first 90.37821520601666 to graph 1, first 90.37821520601666 nohead dt 2 lc rgb '#555555'
set label 'FP 90.38' at graph 0.01, first 90.37821520601666 offset 0,0.6 font 'Sans,8'
set yrange [87.66686874983615:*]
plot 'docs/plots/zeroshot/ppl_vs_bits_ref-opt.dat' index 0 using 1:2 with linespoints pt 4 ps 1.3 lc rgb '#1f77b4' title 'RTN', '' index 0 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#1f77b4' notitle, 'docs/plots/zeroshot/ppl_vs_bits_ref-opt.dat' index 1 using 1:2 with linespoints pt 6 ps 1.3 lc rgb '#ff7f0e' title 'GPTQ', '' index 1 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#ff7f0e' notitle, 'docs/plots/zeroshot/ppl_vs_bits_ref-opt.dat' index 2 using 1:2 with linespoints pt 8 ps 1.3 lc rgb '#2ca02c' title 'BiLLM', '' index 2 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#2ca02c' notitle, 'docs/plots/zeroshot/ppl_vs_bits_ref-opt.dat' index 3 using 1:2 with linespoints pt 10 ps 1.3 lc rgb '#d62728' title 'ARB-LLM', '' index 3 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#d62728' notitle, 'docs/plots/zeroshot/ppl_vs_bits_ref-opt.dat' index 4 using 1:2 with linespoints pt 12 ps 1.3 lc rgb '#9467bd' title 'STBLLM', '' index 4 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#9467bd' notitle, 'docs/plots/zeroshot/ppl_vs_bits_ref-opt.dat' index 5 using 1:2 with linespoints pt 4 ps 1.3 lc rgb '#8c564b' title 'PBS2P', '' index 5 using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '#8c564b' notitle
